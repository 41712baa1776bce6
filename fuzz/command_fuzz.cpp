// Fuzzes remote commands' verifier and parser (command/verifier.h,
// command/invocation.h, wire/command.h). No crash on any input, and:
//  - the input as it came is accepted only when its MAC is the key's (the
//    seed corpus's golden request is; nothing the fuzzer makes by chance);
//  - the input with its MAC made right is accepted exactly when the
//    header is a request's, its timestamp within the window and its
//    counter new, and then its body is the input's;
//  - the body parses (or is refused) without reading beyond it, and the
//    word and arguments it gives lie inside it.
#include <sodium.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netpoll/command/invocation.h"
#include "netpoll/command/verifier.h"
#include "netpoll/wire/command.h"

using namespace np;
namespace cm = wire::command;

namespace {

// The golden request's key and time (src/wire/golden.h).
command::Key fuzz_key() {
  command::Key k;
  k.id = 0x1a2b3c4d;
  for (std::size_t i = 0; i < command::kSecretLen; ++i) k.secret[i] = static_cast<unsigned char>(i);
  return k;
}
constexpr std::int64_t kNow = 0x1122334455667788;

void check_body(std::span<const std::byte> body) {
  const auto inv = command::parse_invocation(body);
  if (!inv) return;
  const char* lo = reinterpret_cast<const char*>(body.data());
  const char* hi = lo + body.size();
  const auto inside = [&](std::string_view s) { return s.empty() || (s.data() >= lo && s.data() + s.size() <= hi); };
  if (inv->word.empty() || !inside(inv->word) || !inside(inv->args)) std::abort();
  if (inv->word.find(' ') != std::string_view::npos) std::abort();
  if (const auto b = command::find_builtin(inv->word)) {
    if (command::builtin_info(*b).id != *b) std::abort();
    if (*b == command::Builtin::kLevel) {
      const auto l = command::parse_level_arg(inv->args);
      if (l && *l > 8) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool ready = command::crypto_ready();
  if (!ready) std::abort();
  command::KeyRing ring;
  ring.add(fuzz_key());
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

  command::Verifier as_sent(ring, {}, 0);
  if (const auto v = as_sent.verify(in, kNow)) {
    const auto d = wire::CommandDatagram<const std::byte>::check(in);
    if (!d || !command::mac_matches(fuzz_key(), *d)) std::abort();
    check_body(v->body);
  } else if (as_sent.drops().total() != 1) {
    std::abort();
  }

  // The same bytes with the key's MAC.
  if (size < cm::kHeaderLen + cm::kMacLen) return 0;
  std::vector<std::byte> sealed(in.begin(), in.end());
  command::seal(fuzz_key(), sealed);
  command::Verifier v(ring, {}, 0);
  const auto r = v.verify(sealed, kNow);
  const auto d = wire::CommandDatagram<const std::byte>::check(std::span<const std::byte>(sealed));
  bool expect = d && size <= cm::kHeaderLen + cm::kMaxRequestBody + cm::kMacLen && d->key_id() == fuzz_key().id;
  if (expect) {
    const auto repr = wire::CommandRepr::parse(*d);
    const std::int64_t window = 30'000'000'000;
    expect = repr && repr->kind == cm::kRequest && repr->timestamp_ns <= static_cast<std::uint64_t>(INT64_MAX) &&
             static_cast<std::int64_t>(repr->timestamp_ns) >= kNow - window &&
             static_cast<std::int64_t>(repr->timestamp_ns) <= kNow + window && repr->counter > 0;
  }
  if (r.has_value() != expect) std::abort();
  if (r) {
    if (r->body.size() != d->body_len() ||
        !std::equal(r->body.begin(), r->body.end(), sealed.begin() + cm::kHeaderLen))
      std::abort();
    check_body(r->body);
    // The same bytes again: a replay.
    const auto again = v.verify(sealed, kNow);
    if (again || again.error() != command::CommandDrop::kReplay) std::abort();
  }
  return 0;
}
