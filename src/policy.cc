#include "policy.h"

#include <algorithm>
#include <cmath>

#include "taxonomy.h"

namespace llmguard::internal {

using std::chrono::milliseconds;

milliseconds backoff_delay(const RetryPolicy& policy, int retry, milliseconds previous, double unit) {
  const double base = static_cast<double>(policy.base_delay.count());
  const double cap = static_cast<double>(policy.max_delay.count());
  unit = std::clamp(unit, 0.0, 1.0);
  // 2^(retry-1), saturating long before double overflow matters.
  const double exponential = std::min(cap, base * std::exp2(std::clamp(retry - 1, 0, 62)));
  double delay = exponential;
  switch (policy.jitter) {
    case Jitter::kNone: break;
    case Jitter::kFull: delay = unit * exponential; break;
    case Jitter::kEqual: delay = exponential / 2 + unit * exponential / 2; break;
    case Jitter::kDecorrelated: {
      // AWS "decorrelated jitter": U(base, previous * 3), capped.
      const double upper = std::max(base, 3.0 * static_cast<double>(previous.count()));
      delay = std::min(cap, base + unit * (upper - base));
      break;
    }
  }
  return milliseconds(static_cast<std::int64_t>(std::llround(std::max(0.0, delay))));
}

namespace {

Decision decide_by_category(const Error& error, int tries_on_target, const RetryPolicy& policy, milliseconds backoff);

}  // namespace

Decision decide(const Error& error, int tries_on_target, const RetryPolicy& policy, milliseconds backoff) {
  Decision d = decide_by_category(error, tries_on_target, policy, backoff);
  if (error.should_retry == false && d.step == Step::kRetrySameTarget) return {Step::kNextTarget};
  if (error.should_retry == true && d.step != Step::kRetrySameTarget &&
      (error.category == ErrorCategory::kUnknown || error.category == ErrorCategory::kBadRequest) &&
      tries_on_target < policy.max_attempts) {
    // The provider says this one is worth another try (a conflict, a lock).
    return {Step::kRetrySameTarget, error.retry_after && *error.retry_after <= policy.max_retry_after
                                        ? *error.retry_after : backoff};
  }
  return d;
}

namespace {

Decision decide_by_category(const Error& error, int tries_on_target, const RetryPolicy& policy, milliseconds backoff) {
  const bool tries_left = tries_on_target < policy.max_attempts;
  auto retry_or_next = [&](int max_tries) -> Decision {
    if (tries_on_target >= max_tries) return {Step::kNextTarget};
    if (error.retry_after) {
      // The provider said how long; beyond our cap, another target is better.
      if (*error.retry_after > policy.max_retry_after) return {Step::kNextTarget};
      return {Step::kRetrySameTarget, std::max(*error.retry_after, milliseconds(0))};
    }
    return {Step::kRetrySameTarget, backoff};
  };
  if (error.category != ErrorCategory::kCancelled) {
    const auto rule = std::find_if(policy.rules.rbegin(), policy.rules.rend(),
                                   [&](const CategoryRule& r) { return r.category == error.category; });
    if (rule != policy.rules.rend()) {
      switch (rule->action) {
        case OnFailure::kFail: return {Step::kFail};
        case OnFailure::kNextTarget: return {Step::kNextTarget};
        case OnFailure::kRetry: return retry_or_next(rule->max_attempts.value_or(policy.max_attempts));
      }
    }
  }
  switch (category_info(error.category).action) {
    case DefaultAction::kFail: return {Step::kFail};
    case DefaultAction::kNextTarget: return {Step::kNextTarget};
    case DefaultAction::kRetry: return tries_left ? retry_or_next(policy.max_attempts) : Decision{Step::kNextTarget};
    case DefaultAction::kRetryOnce: return retry_or_next(std::min(2, policy.max_attempts));
  }
  return {Step::kFail};
}

}  // namespace

bool skip_for_context(std::optional<std::int64_t> failed_window, std::optional<std::int64_t> candidate_window) {
  if (!failed_window || !candidate_window) return false;
  return *candidate_window <= *failed_window;
}

}  // namespace llmguard::internal
