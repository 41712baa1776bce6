// Remote commands' shared keys: the key file, made by `netpoll keygen` and
// read by the process that takes commands and by `netpoll cmd`.
//
// A key file holds one key per line (the sender uses the first):
//
//   netpoll-command-key 1 <key id: 8 hex digits> <secret: 64 hex digits>
//
// with '#' comment lines and blank lines allowed. The key id tells the
// receiver which secret made a datagram's MAC (wire/command.h); the secret
// is an HMAC-SHA-256 key (32 bytes, libsodium's crypto_auth_hmacsha256).
//
// Invariants: a key file that anyone but its owner may read or write
// (mode & 077) is refused, as ssh refuses a private key, with a message
// that says how to fix it; keygen creates the file with mode 0600 and
// never overwrites one. A KeyRing is fixed in size (kMaxKeys), so the
// verifier holds no heap.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "netpoll/base/result.h"

namespace np::command {

inline constexpr std::size_t kSecretLen = 32;
inline constexpr std::size_t kMaxKeys = 16;

struct Key {
  std::uint32_t id = 0;
  std::array<unsigned char, kSecretLen> secret{};
};

class KeyRing {
 public:
  // Adds a key; false when the ring is full or the id is taken.
  // Context: setup.
  bool add(const Key& k) noexcept;
  // The key with this id, or nullptr. Context: any.
  const Key* find(std::uint32_t id) const noexcept;
  // Its position in the ring (for per-key state), or kMaxKeys. Context: any.
  std::size_t index_of(std::uint32_t id) const noexcept;
  std::size_t size() const noexcept { return count_; }
  const Key& operator[](std::size_t i) const noexcept { return keys_[i]; }

 private:
  std::array<Key, kMaxKeys> keys_{};
  std::size_t count_ = 0;
};

// Reads every key of `path`. Refuses a file others may read or write, a
// line that does not parse (quoting it, with its number), two keys with
// one id, more than kMaxKeys keys, and a file without any. Context: setup.
[[nodiscard]] SetupResult<KeyRing> load_key_file(const std::string& path);

// Makes a new key (random id and secret) and writes it to `path`, created
// with mode 0600; an existing file is never replaced. Context: setup.
[[nodiscard]] SetupResult<Key> generate_key_file(const std::string& path);

// The key's line as a key file holds it (with its newline). Context: setup.
std::string key_line(const Key& k);

// libsodium's sodium_init(), once; false if it failed. Context: setup.
[[nodiscard]] bool crypto_ready() noexcept;

}  // namespace np::command
