// The credentials a configuration holds, and a redactor that masks them in
// any text shown to a person or a log: error messages (even ones a provider
// or gateway echoed back), replies, streamed deltas. Pattern-based masking
// (`redact_secrets` in classify.h) catches well-known key shapes; this
// catches the configured ones whatever they look like ("corp-secret-...").
//
//   const internal::Redactor redactor(internal::credentials_of(options));
//   log(redactor.redact(error.message));
//
//   internal::StreamRedactor stream(redactor);  // for text that comes in pieces
//   for (auto piece : pieces) out << stream.feed(piece);
//   out << stream.finish();
#ifndef LLMGUARD_SRC_SECRETS_H_
#define LLMGUARD_SRC_SECRETS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "llmguard/options.h"

namespace llmguard::internal {

// Shorter credentials are not masked: "none", "x" or "local" would mask
// ordinary words everywhere. Also the shortest truncated tail that is masked.
inline constexpr std::size_t kMinSecretLength = 8;

// What a masked credential becomes.
inline constexpr std::string_view kSecretMask = "***";

// True for headers whose value is a credential: authorization,
// proxy-authorization, api-key, x-api-key, x-goog-api-key, and any name that
// contains key, token, secret, auth, password, passwd, credential or cookie
// (any case).
bool is_credential_header(std::string_view name) noexcept;

// Every credential `options` holds, as it may appear in text: each target's
// `api_key`; the value of its `api_key_env` variable (or of the provider's
// default variable, OPENAI_API_KEY etc., when neither is set); and the value
// of each credential header — whole, without an auth scheme ("Bearer ",
// "Basic "), and each cookie's value. Reads the environment. Empty values and
// duplicates are left out; short ones are kept (Redactor skips them).
std::vector<std::string> credentials_of(const ClientOptions& options);

// Masks a fixed set of secrets. Immutable, so thread-safe.
class Redactor {
 public:
  Redactor() = default;
  // Secrets shorter than kMinSecretLength are ignored.
  explicit Redactor(std::vector<std::string> secrets);

  // `text` with every occurrence of a secret, in any ASCII case, replaced by
  // kSecretMask; a prefix (at least kMinSecretLength bytes) of a secret at
  // the very end of `text` is masked too, as messages cut at a length limit
  // may end in part of a key.
  std::string redact(std::string_view text) const;

  bool empty() const noexcept { return secrets_.empty(); }

 private:
  friend class StreamRedactor;
  // Redacts from the start of `text`; returns how many bytes were decided.
  // Unless `at_end`, stops before the first place where a secret may begin
  // but the text ends first (so more text decides).
  std::size_t scan(std::string_view text, bool at_end, std::string& out) const;

  std::vector<std::string> secrets_;  // ASCII lower-cased, longest first
  bool first_bytes_[256] = {};        // lower-cased first bytes of secrets_
};

// Redacts text that arrives in pieces (stream deltas): a secret split across
// pieces is masked all the same. Holds back at most the longest secret's
// length minus one byte, and only while what it holds may begin a secret.
// Thread-compatible; `redactor` must outlive it.
class StreamRedactor {
 public:
  explicit StreamRedactor(const Redactor& redactor) : redactor_(redactor) {}
  // What can be shown now.
  std::string feed(std::string_view piece);
  // The rest, at the end of the text (or before a restart of it).
  std::string finish();

 private:
  const Redactor& redactor_;
  std::string pending_;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_SECRETS_H_
