#include "netpoll/command/verifier.h"

#include <sodium.h>

namespace np::command {

namespace cm = wire::command;

const char* to_string(CommandDrop d) noexcept {
  switch (d) {
    case CommandDrop::kTruncated: return "truncated";
    case CommandDrop::kOversized: return "oversized";
    case CommandDrop::kMalformed: return "malformed";
    case CommandDrop::kUnknownKey: return "unknown_key";
    case CommandDrop::kBadMac: return "bad_mac";
    case CommandDrop::kStale: return "stale";
    case CommandDrop::kReplay: return "replay";
    case CommandDrop::kBusy: return "busy";
    case CommandDrop::kCount: break;
  }
  return "?";
}

Verifier::Verifier(const KeyRing& keys, VerifierConfig cfg, std::int64_t start_ns) noexcept
    : keys_(keys), cfg_(cfg) {
  const std::int64_t floor = start_ns - std::chrono::nanoseconds(cfg_.window).count();
  highest_.fill(floor > 0 ? static_cast<std::uint64_t>(floor) : 0);
}

std::expected<Verified, CommandDrop> Verifier::verify(std::span<const std::byte> datagram,
                                                      std::int64_t now_ns) noexcept {
  const auto drop = [this](CommandDrop d) {
    drops_.add(d);
    return std::unexpected(d);
  };
  // 1. Lengths only.
  if (datagram.size() < cm::kHeaderLen + cm::kMacLen) return drop(CommandDrop::kTruncated);
  if (datagram.size() > cm::kHeaderLen + cm::kMaxRequestBody + cm::kMacLen) return drop(CommandDrop::kOversized);
  const auto d = wire::CommandDatagram<const std::byte>::check(datagram);
  if (!d) return drop(d.error() == Errc::kTruncated ? CommandDrop::kTruncated : CommandDrop::kMalformed);
  // 2. The key.
  const std::size_t k = keys_.index_of(d->key_id());
  if (k >= keys_.size()) return drop(CommandDrop::kUnknownKey);
  // 3. The MAC, before any other field is believed.
  if (!mac_matches(keys_[k], *d)) return drop(CommandDrop::kBadMac);
  // 4. What the sender meant.
  const auto r = wire::CommandRepr::parse(*d);
  if (!r || r->kind != cm::kRequest) return drop(CommandDrop::kMalformed);
  // 5. Fresh.
  const std::int64_t window = std::chrono::nanoseconds(cfg_.window).count();
  const auto ts = static_cast<std::int64_t>(r->timestamp_ns);
  if (r->timestamp_ns > static_cast<std::uint64_t>(INT64_MAX) || ts < now_ns - window || ts > now_ns + window)
    return drop(CommandDrop::kStale);
  // 6. Never seen.
  if (r->counter <= highest_[k]) return drop(CommandDrop::kReplay);
  highest_[k] = r->counter;
  accepted_.add();
  return Verified{r->key_id, r->counter, r->timestamp_ns, r->body};
}

std::span<std::byte> seal_request(const Key& key, std::uint64_t counter, std::uint64_t timestamp_ns,
                                  std::span<const std::byte> body, std::span<std::byte> out) noexcept {
  wire::CommandRepr r;
  r.kind = cm::kRequest;
  r.key_id = key.id;
  r.counter = counter;
  r.timestamp_ns = timestamp_ns;
  r.body = body;
  if (body.size() > 0xffff || out.size() < r.buffer_len()) return {};
  const auto d = r.emit(out);
  seal(key, d);
  return d;
}

void seal(const Key& key, std::span<std::byte> datagram) noexcept {
  const std::size_t covered = datagram.size() - cm::kMacLen;
  ::crypto_auth_hmacsha256(reinterpret_cast<unsigned char*>(datagram.data() + covered),
                           reinterpret_cast<const unsigned char*>(datagram.data()), covered, key.secret.data());
}

bool mac_matches(const Key& key, const wire::CommandDatagram<const std::byte>& d) noexcept {
  const auto covered = d.authenticated();
  return ::crypto_auth_hmacsha256_verify(reinterpret_cast<const unsigned char*>(d.mac().data()),
                                         reinterpret_cast<const unsigned char*>(covered.data()), covered.size(),
                                         key.secret.data()) == 0;
}

}  // namespace np::command
