// Errors are values: every failure of a call comes back as an `llmguard::Error`
// inside a `Result<T>`, never as an exception and never printed by the library.
//
// Why one result type of our own rather than exceptions or `absl::Status`: a
// failed LLM call carries structured facts the caller acts on (the taxonomy
// category, the provider's status/code/message verbatim, the delay it asked
// for, the attempt trail, text a stream had already delivered). Exceptions
// hide that flow in agents that must keep running; `absl::Status` would force
// those facts into untyped payloads and drag Abseil into every user's headers.
#ifndef LLMGUARD_ERROR_H_
#define LLMGUARD_ERROR_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace llmguard {

// The error taxonomy. The snake_case names from `to_string` are part of the
// public contract (CLI output, logs, metrics labels); see docs/errors.md.
enum class ErrorCategory : std::uint8_t {
  kAuth,             // credential missing, malformed, invalid, expired, revoked
  kPermission,       // authenticated but not allowed
  kModelNotFound,    // model/deployment unknown, disabled or removed
  kRateLimit,        // throttled now; waiting helps
  kQuotaExhausted,   // out of credits/quota; a short wait does not help
  kContextOverflow,  // prompt + output too large for the model
  kContentFilter,    // refused on content-policy grounds
  kBadRequest,       // any other invalid request; it will fail again
  kTransient,        // 5xx, 529, 408, gateway pages, malformed replies
  kTimeout,          // no complete response in time
  kConnection,       // could not connect, or the connection broke
  kCancelled,        // the caller cancelled
  kBudgetExceeded,   // refused locally: the call would overrun a budget
  kCircuitOpen,      // refused locally: the target's breaker is open
  kUnknown,          // nothing recognisable
};

// "rate_limit", "model_not_found", ...
std::string_view to_string(ErrorCategory category) noexcept;
// Inverse of `to_string`; nullopt for an unknown name.
std::optional<ErrorCategory> parse_error_category(std::string_view name) noexcept;

// What a call did after a failed attempt, and why: the trail's answer to
// "why did it give up on that target?".
enum class NextStep : std::uint8_t {
  kRetry,       // tried the same target again
  kNextTarget,  // moved on to the next target
  kFail,        // ended the call with this attempt's error
};
enum class StepReason : std::uint8_t {
  kCategoryDefault,      // the category's default action (docs/errors.md)
  kRule,                 // a RetryPolicy::rules entry for the category
  kAttemptsExhausted,    // max_attempts tries on this target used up
  kDelayAboveCap,        // the provider's delay exceeds max_retry_after
  kProviderSaidNo,       // x-should-retry: false
  kProviderSaidRetry,    // x-should-retry: true
  kPastDeadline,         // waiting (or the attempt) would outlast the call's deadline
  kRetryBudget,          // the target's retry budget is spent
  kSilentRoute,          // timed out before any byte of a reply: the route is dead
  kBrokenStream,         // a stream broke after text (cut, stall, bad event): its restart goes elsewhere
  kStreamDelivered,      // text had reached the caller, and no restart was allowed
  kShrunk,               // context overflow: retried with the caller's shorter messages
  kCredentialRefreshed,  // a 401/403: retried once with a fresh token from the credential source
};
std::string_view to_string(NextStep step) noexcept;
std::string_view to_string(StepReason reason) noexcept;  // "attempts_exhausted", ...

// One upstream try, or one target passed over without a request.
struct Attempt {
  std::string target;                     // the target's configured name
  std::optional<ErrorCategory> category;  // nullopt: this attempt succeeded
  int http_status = 0;                    // 0: no HTTP response arrived
  std::chrono::milliseconds waited{0};    // wait before this attempt started
  std::chrono::milliseconds duration{0};  // from request start to outcome
  // Set when the target was passed over without a request (breaker open,
  // budget, smaller context window, ...): the reason's category.
  std::optional<ErrorCategory> skipped;
  // For a failed attempt: what the call did next, and why.
  std::optional<NextStep> next;
  std::optional<StepReason> reason;
};

struct Error {
  ErrorCategory category = ErrorCategory::kUnknown;
  int http_status = 0;        // 0 when no HTTP response was received
  std::string provider_code;  // e.g. "insufficient_quota", verbatim
  std::string provider_type;  // e.g. "invalid_request_error", verbatim
  std::string message;        // provider's message verbatim, secrets redacted
  std::string hint;           // one line of advice a developer can act on
  // The id of the classifier rule that chose the category ("quota.words",
  // "status", a user rule's own id); "" for errors decided locally.
  // `llmguard classify --explain` prints it with its evidence.
  std::string rule;
  std::optional<std::chrono::milliseconds> retry_after;  // provider's delay
  // The provider's own verdict (OpenAI's and Anthropic's `x-should-retry`
  // header), when it sent one: false keeps the call from retrying this
  // target, true lets an unknown or bad-request failure be retried here.
  std::optional<bool> should_retry;
  std::string target;             // target that produced it ("" if local)
  std::vector<Attempt> attempts;  // the whole trail of the call
  std::string partial_content;    // text a stream had delivered before failing

  // True for the categories a retry on the same target may cure.
  bool retryable() const noexcept;
};

// "rate_limit (HTTP 429, rate_limit_exceeded): Rate limit reached ..." — one
// line for logs. Never contains a credential: messages are redacted at source.
std::string describe(const Error& error);

// An error of `category` with `message` and nothing else set: what a custom
// Transport returns for a failed exchange, and what llmguard builds its own
// local errors with.
Error make_error(ErrorCategory category, std::string message);

// Holds a `T` or an `Error`. Accessing the wrong alternative is a programming
// error and aborts (in every build mode), like `std::optional::value` would
// throw; check `ok()` first.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : storage_(std::in_place_index<0>, std::move(value)) {}      // NOLINT
  Result(Error error) : storage_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return storage_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    check(true);
    return std::get<0>(storage_);
  }
  const T& value() const& {
    check(true);
    return std::get<0>(storage_);
  }
  T&& value() && {
    check(true);
    return std::get<0>(std::move(storage_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    check(false);
    return std::get<1>(storage_);
  }
  Error& error() & {
    check(false);
    return std::get<1>(storage_);
  }
  Error&& error() && {
    check(false);
    return std::get<1>(std::move(storage_));
  }

 private:
  void check(bool want_value) const;
  std::variant<T, Error> storage_;
};

// A `Result` with no value: success, or an `Error`.
using Status = Result<std::monostate>;
inline Status ok_status() { return Status(std::monostate{}); }

namespace internal {
[[noreturn]] void die_bad_result_access(bool wanted_value);
}  // namespace internal

template <typename T>
void Result<T>::check(bool want_value) const {
  if (ok() != want_value) internal::die_bad_result_access(want_value);
}

}  // namespace llmguard

#endif  // LLMGUARD_ERROR_H_
