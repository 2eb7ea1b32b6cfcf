// Turns an upstream outcome into an `Error` of the taxonomy. Pure functions:
// same input, same output; no clock except the wall time passed in.
#ifndef LLMGUARD_SRC_CLASSIFY_H_
#define LLMGUARD_SRC_CLASSIFY_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "llmguard/error.h"
#include "llmguard/runtime.h"

namespace llmguard::internal {

class UserRules;

// Classifies an HTTP response that is an error (any status, including a 2xx
// whose body is an error object). `now` resolves HTTP-date delays.
// With `evidence`, says what the deciding rule (Error::rule) matched;
// `user_rules` are tried before the built-in ones.
Error classify_response(int http_status, const Headers& headers, std::string_view body,
                        std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
                        std::string* evidence = nullptr, const UserRules* user_rules = nullptr);

// Classifies a recorded exchange as `llmguard classify` receives it. With
// `stream`, `body` is raw SSE text and the first error event decides.
Error classify_exchange(int http_status, const Headers& headers, std::string_view body, bool stream,
                        std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
                        std::string* evidence = nullptr, const UserRules* user_rules = nullptr);

// One line of advice for `error`, by category and what the error says.
std::string hint_for(const Error& error);

// The delay the response asks for, by DESIGN.md's precedence: retry-after-ms,
// retry-after (seconds or HTTP-date), a delay written in the body ("try again
// in 20s", RetryInfo retryDelay), then the reset time of an exhausted limit
// (x-ratelimit-reset-*, anthropic-ratelimit-*-reset).
std::optional<std::chrono::milliseconds> requested_delay(const Headers& headers, std::string_view body,
                                                         std::chrono::system_clock::time_point now);
std::optional<std::chrono::milliseconds> requested_delay(const Headers& headers,
                                                         std::chrono::system_clock::time_point now);

// Parses Go-style durations used by x-ratelimit-reset-*: "6m0s", "1.5s", "20ms".
std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text);

// Replaces anything that looks like a credential (API keys, bearer tokens,
// key= query parameters) with a masked form keeping a short prefix.
std::string redact_secrets(std::string_view text);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_CLASSIFY_H_
