// Pcap writer (see pcap.h).
#include "netpoll/dev/pcap.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "netpoll/base/clock.h"
#include "posix.h"

namespace np::dev {
namespace {

// The pcap file format (libpcap's savefile.c, pcap-savefile(5)): fields in
// the writer's byte order; a reader tells the order from the magic.
constexpr std::uint32_t kMagicMicros = 0xa1b2c3d4;
constexpr std::uint16_t kVersionMajor = 2;
constexpr std::uint16_t kVersionMinor = 4;
constexpr std::uint32_t kSnapLen = 65535;
constexpr std::uint32_t kLinkTypeEthernet = 1;
constexpr std::size_t kGlobalHeaderLen = 24;
constexpr std::size_t kRecordHeaderLen = 16;

template <class T>
void put(std::byte* at, T v) noexcept {
  std::memcpy(at, &v, sizeof v);
}

class PcapWriter final : public PcapDevice {
 public:
  PcapWriter(std::unique_ptr<Device> inner, int fd) : PcapDevice(std::move(inner)), fd_(fd) {}
  ~PcapWriter() override { ::close(fd_); }

  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override {
    ErrnoSaver keep_errno;  // may run inside a signal handler
    return inner().receive(budget, [&](std::span<const std::byte> frame) {
      record(frame, stats_.rx_records, stats_.rx_write_errors);
      sink(frame);
    });
  }

  TxStatus transmit(std::span<const std::byte> frame) noexcept override {
    ErrnoSaver keep_errno;  // may run inside a signal handler
    return record_if_taken(frame, inner().transmit(frame));
  }

  // A kOk frame is taken even if its kick waits (Device::transmit_more), so
  // it is recorded now, like one from transmit().
  TxStatus transmit_more(std::span<const std::byte> frame) noexcept override {
    ErrnoSaver keep_errno;  // may run inside a signal handler
    return record_if_taken(frame, inner().transmit_more(frame));
  }

  const PcapStats& pcap_stats() const noexcept override { return stats_; }

 private:
  // Context: any.
  TxStatus record_if_taken(std::span<const std::byte> frame, TxStatus s) noexcept {
    if (s == TxStatus::kOk) record(frame, stats_.tx_records, stats_.tx_write_errors);
    return s;
  }

  // Context: any (called from the receive or the transmit side).
  void record(std::span<const std::byte> frame, Counter& written, Counter& failed) noexcept {
    if (broken_.load(std::memory_order_relaxed)) {
      failed.add();
      return;
    }
    const std::int64_t now = realtime_ns();
    const std::size_t incl = frame.size() < kSnapLen ? frame.size() : kSnapLen;
    std::byte hdr[kRecordHeaderLen];
    put(hdr + 0, static_cast<std::uint32_t>(now / 1'000'000'000));
    put(hdr + 4, static_cast<std::uint32_t>(now % 1'000'000'000 / 1000));
    put(hdr + 8, static_cast<std::uint32_t>(incl));
    put(hdr + 12, static_cast<std::uint32_t>(frame.size()));
    iovec iov[2] = {{hdr, sizeof hdr}, {const_cast<std::byte*>(frame.data()), incl}};
    const ssize_t n = ::writev(fd_, iov, 2);
    if (n == static_cast<ssize_t>(sizeof hdr + incl)) {
      written.add();
      return;
    }
    failed.add();
    // Nothing written: the file is still whole, later records may succeed.
    // Part written: the file now ends mid-record, and anything appended
    // after it would be read as garbage.
    if (n > 0) broken_.store(true, std::memory_order_relaxed);
  }

  const int fd_;
  std::atomic<bool> broken_{false};
  PcapStats stats_;
};

}  // namespace

SetupResult<std::unique_ptr<PcapDevice>> wrap_pcap(std::unique_ptr<Device> inner, const std::string& path) {
  const std::string quoted = "pcap file '" + path + "'";
  if (inner == nullptr) return setup_error(Errc::kInvalidArgument, quoted + ": no device to record");
  // O_APPEND: every writev lands whole at the end of the file, whichever
  // side (receive or transmit thread) makes it.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    return setup_error(errno == EACCES ? Errc::kPermission : Errc::kIo, quoted + ": " + errno_text(errno));
  }
  std::byte hdr[kGlobalHeaderLen];
  put(hdr + 0, kMagicMicros);
  put(hdr + 4, kVersionMajor);
  put(hdr + 6, kVersionMinor);
  put(hdr + 8, std::int32_t{0});   // thiszone: timestamps are UTC
  put(hdr + 12, std::uint32_t{0});  // sigfigs: always 0 in practice
  put(hdr + 16, kSnapLen);
  put(hdr + 20, kLinkTypeEthernet);
  const ssize_t n = ::write(fd.get(), hdr, sizeof hdr);
  if (n != static_cast<ssize_t>(sizeof hdr)) {
    const int err = n < 0 ? errno : ENOSPC;
    return setup_error(Errc::kIo, quoted + ": cannot write the header: " + errno_text(err));
  }
  return std::unique_ptr<PcapDevice>(new PcapWriter(std::move(inner), fd.release()));
}

}  // namespace np::dev
