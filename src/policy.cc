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
    case Jitter::kNone:
      break;
    case Jitter::kFull:
      delay = unit * exponential;
      break;
    case Jitter::kEqual:
      delay = exponential / 2 + unit * exponential / 2;
      break;
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

const CategoryRule* rule_for(const RetryPolicy& policy, ErrorCategory category) {
  // A later rule for the same category wins.
  const auto rule = std::find_if(policy.rules.rbegin(), policy.rules.rend(),
                                 [&](const CategoryRule& r) { return r.category == category; });
  return rule == policy.rules.rend() ? nullptr : &*rule;
}

Decision decide_by_category(const Error& error, int tries_on_target, const RetryPolicy& policy, milliseconds backoff) {
  const CategoryRule* rule = error.category == ErrorCategory::kCancelled ? nullptr : rule_for(policy, error.category);
  const StepReason why = rule ? StepReason::kRule : StepReason::kCategoryDefault;
  auto retry_or_next = [&](int max_tries) -> Decision {
    if (tries_on_target >= max_tries) return {Step::kNextTarget, milliseconds(0), StepReason::kAttemptsExhausted};
    if (error.retry_after) {
      // The provider said how long; beyond our cap, another target is better.
      if (*error.retry_after > policy.max_retry_after) {
        return {Step::kNextTarget, milliseconds(0), StepReason::kDelayAboveCap};
      }
      return {Step::kRetrySameTarget, std::max(*error.retry_after, milliseconds(0)), why};
    }
    return {Step::kRetrySameTarget, backoff, why};
  };
  if (rule) {
    switch (rule->action) {
      case OnFailure::kFail:
        return {Step::kFail, milliseconds(0), why};
      case OnFailure::kNextTarget:
        return {Step::kNextTarget, milliseconds(0), why};
      case OnFailure::kRetry:
        return retry_or_next(rule->max_attempts.value_or(policy.max_attempts));
    }
  }
  switch (category_info(error.category).action) {
    case DefaultAction::kFail:
      return {Step::kFail, milliseconds(0), why};
    case DefaultAction::kNextTarget:
      return {Step::kNextTarget, milliseconds(0), why};
    case DefaultAction::kRetry:
      return retry_or_next(policy.max_attempts);
    case DefaultAction::kRetryOnce:
      return retry_or_next(std::min(2, policy.max_attempts));
  }
  return {Step::kFail, milliseconds(0), why};
}

}  // namespace

Decision decide(const Error& error, int tries_on_target, const RetryPolicy& policy, milliseconds backoff) {
  Decision d = decide_by_category(error, tries_on_target, policy, backoff);
  if (error.should_retry == false && d.step == Step::kRetrySameTarget) {
    return {Step::kNextTarget, milliseconds(0), StepReason::kProviderSaidNo};
  }
  if (error.should_retry == true && d.step != Step::kRetrySameTarget &&
      (error.category == ErrorCategory::kUnknown || error.category == ErrorCategory::kBadRequest) &&
      tries_on_target < policy.max_attempts) {
    // The provider says this one is worth another try (a conflict, a lock).
    return {Step::kRetrySameTarget,
            error.retry_after && *error.retry_after <= policy.max_retry_after ? *error.retry_after : backoff,
            StepReason::kProviderSaidRetry};
  }
  return d;
}

Decision decide(const RetryInputs& in) {
  const Error& error = in.error;
  const bool has_rule = rule_for(in.policy, error.category) != nullptr;
  // Waiting out the same timeout again on a route that never answered costs
  // minutes; another target may answer now. A stream that broke after text
  // reached the caller starts over elsewhere: the caller has seen a restart
  // already, and this target just showed it cannot finish.
  if (!has_rule && in.later_targets && error.category == ErrorCategory::kTimeout && in.silent) {
    return {Step::kNextTarget, milliseconds(0), StepReason::kSilentRoute};
  }
  if (!has_rule && in.later_targets && in.broken_stream && error.category != ErrorCategory::kCancelled) {
    return {Step::kNextTarget, milliseconds(0), StepReason::kBrokenStream};
  }
  const milliseconds backoff = backoff_delay(in.policy, in.tries_on_target, in.previous_backoff, in.unit);
  Decision d = decide(error, in.tries_on_target, in.policy, backoff);
  if (d.step != Step::kRetrySameTarget) return d;
  if (in.time_left && d.delay >= *in.time_left) return {Step::kNextTarget, milliseconds(0), StepReason::kPastDeadline};
  if (!in.retry_budget_left) return {Step::kNextTarget, milliseconds(0), StepReason::kRetryBudget};
  return d;
}

bool skip_for_context(std::optional<std::int64_t> failed_window, std::optional<std::int64_t> candidate_window) {
  if (!failed_window || !candidate_window) return false;
  return *candidate_window <= *failed_window;
}

}  // namespace llmguard::internal
