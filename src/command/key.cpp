#include "netpoll/command/key.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string_view>

#include "netpoll/base/hex.h"

namespace np::command {
namespace {

constexpr std::string_view kTag = "netpoll-command-key";
constexpr std::string_view kFormatVersion = "1";

bool parse_hex(std::string_view text, unsigned char* out, std::size_t n) {
  if (text.size() != 2 * n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = hex_digit(text[2 * i]);
    const int lo = hex_digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

std::string mode_text(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

}  // namespace

bool KeyRing::add(const Key& k) noexcept {
  if (count_ == kMaxKeys || find(k.id) != nullptr) return false;
  keys_[count_++] = k;
  return true;
}

const Key* KeyRing::find(std::uint32_t id) const noexcept {
  const std::size_t i = index_of(id);
  return i < count_ ? &keys_[i] : nullptr;
}

std::size_t KeyRing::index_of(std::uint32_t id) const noexcept {
  for (std::size_t i = 0; i < count_; ++i) {
    if (keys_[i].id == id) return i;
  }
  return kMaxKeys;
}

bool crypto_ready() noexcept { return ::sodium_init() >= 0; }

SetupResult<KeyRing> load_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return setup_error(e == ENOENT ? Errc::kNotFound : e == EACCES ? Errc::kPermission : Errc::kIo,
                       "key file " + path + ": " + std::strerror(e) +
                           (e == ENOENT ? " (make one with: netpoll keygen " + path + ")" : ""));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return setup_error(Errc::kIo, "key file " + path + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return setup_error(Errc::kInvalidArgument, "key file " + path + ": not a regular file");
  }
  // As ssh does with a private key: a secret others can read is no secret.
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return setup_error(Errc::kPermission, "key file " + path + " is accessible by group or others (mode " +
                                              mode_text(st.st_mode) + "); refusing it: chmod 600 " + path);
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > (1 << 20)) break;
  }
  ::close(fd);
  KeyRing ring;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    std::istringstream words(line);
    std::string tag, version, id_text, secret_text, extra;
    words >> tag >> version >> id_text >> secret_text;
    Key k;
    unsigned char id_bytes[4];
    if (tag != kTag || version != kFormatVersion || !parse_hex(id_text, id_bytes, 4) ||
        !parse_hex(secret_text, k.secret.data(), kSecretLen) || (words >> extra)) {
      return setup_error(Errc::kMalformed, "key file " + path + " line " + std::to_string(number) +
                                               ": expected '" + std::string(kTag) +
                                               " 1 <8 hex digits> <64 hex digits>' (netpoll keygen writes it)");
    }
    k.id = (std::uint32_t{id_bytes[0]} << 24) | (std::uint32_t{id_bytes[1]} << 16) |
           (std::uint32_t{id_bytes[2]} << 8) | id_bytes[3];
    if (ring.find(k.id) != nullptr)
      return setup_error(Errc::kExists, "key file " + path + " line " + std::to_string(number) + ": key id " +
                                            id_text + " comes twice");
    if (!ring.add(k))
      return setup_error(Errc::kNoBuffer,
                         "key file " + path + ": more than " + std::to_string(kMaxKeys) + " keys");
    sodium_memzero(&k, sizeof k);
  }
  if (ring.size() == 0) return setup_error(Errc::kNotFound, "key file " + path + " holds no key");
  return ring;
}

std::string key_line(const Key& k) {
  std::string out(kTag);
  out += ' ';
  out += kFormatVersion;
  out += ' ';
  for (int shift = 28; shift >= 0; shift -= 4) out += kHexDigits[(k.id >> shift) & 0xf];
  out += ' ';
  for (const unsigned char b : k.secret) {
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 0xf];
  }
  out += '\n';
  return out;
}

SetupResult<Key> generate_key_file(const std::string& path) {
  if (!crypto_ready()) return setup_error(Errc::kIo, "libsodium could not be initialised");
  Key k;
  ::randombytes_buf(&k.id, sizeof k.id);
  ::crypto_auth_hmacsha256_keygen(k.secret.data());
  // O_EXCL: an existing key (someone's running process may use it) is
  // never replaced by accident.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    return setup_error(e == EEXIST ? Errc::kExists : Errc::kIo,
                       "cannot create " + path + ": " + std::strerror(e) +
                           (e == EEXIST ? " (a key file is never overwritten; remove it first)" : ""));
  }
  // The umask may have taken bits away, never added: 0600 exactly.
  const std::string line = "# netpoll remote commands: keep this file secret (mode 0600)\n" + key_line(k);
  bool ok = ::fchmod(fd, 0600) == 0;
  std::size_t done = 0;
  while (ok && done < line.size()) {
    const ssize_t w = ::write(fd, line.data() + done, line.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) ok = false;
    else done += static_cast<std::size_t>(w);
  }
  ok = ::fsync(fd) == 0 && ok;
  const int e = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return setup_error(Errc::kIo, "cannot write " + path + ": " + std::strerror(e));
  }
  return k;
}

}  // namespace np::command
