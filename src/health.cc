#include "health.h"

#include <algorithm>

#include "taxonomy.h"

namespace llmguard::internal {

using std::chrono::milliseconds;

bool TargetHealth::allow(SteadyTime now) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (now < open_until_) return false;
      state_ = State::kHalfOpen;
      probe_in_flight_ = true;
      return true;
    case State::kHalfOpen:
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return true;
}

std::optional<TargetHealth::Transition> TargetHealth::on_success(SteadyTime) {
  std::lock_guard lock(mu_);
  consecutive_failures_ = 0;
  probe_in_flight_ = false;
  if (state_ == State::kClosed) return std::nullopt;
  state_ = State::kClosed;
  opened_by_.reset();
  return Transition{State::kClosed};
}

std::optional<TargetHealth::Transition> TargetHealth::open(milliseconds for_how_long, ErrorCategory why,
                                                           SteadyTime now) {
  state_ = State::kOpen;
  open_until_ = now + for_how_long;
  opened_by_ = why;
  probe_in_flight_ = false;
  return Transition{State::kOpen, for_how_long};
}

void TargetHealth::open_from_fleet(ErrorCategory why, milliseconds left, SteadyTime now) {
  std::lock_guard lock(mu_);
  if (state_ == State::kOpen && open_until_ >= now + left) return;
  open(left, why, now);
}

std::optional<TargetHealth::Transition> TargetHealth::on_failure(ErrorCategory category, SteadyTime now) {
  std::lock_guard lock(mu_);
  switch (category_info(category).breaker) {
    case BreakerEffect::kAuthCooldown:
      return open(breaker_.auth_cooldown, category, now);
    case BreakerEffect::kQuotaCooldown:
      return open(breaker_.quota_cooldown, category, now);
    case BreakerEffect::kModelCooldown:
      return open(breaker_.model_not_found_cooldown, category, now);
    case BreakerEffect::kCountsFailure:
      break;
    case BreakerEffect::kHealthy:
    case BreakerEffect::kNone:
      // The target answered sensibly (rate limit, bad request, ...): it is
      // healthy, whatever became of the call.
      probe_in_flight_ = false;
      if (state_ == State::kHalfOpen) {
        state_ = State::kClosed;
        opened_by_.reset();
        consecutive_failures_ = 0;
        return Transition{State::kClosed};
      }
      consecutive_failures_ = 0;
      return std::nullopt;
  }
  ++consecutive_failures_;
  if (state_ == State::kHalfOpen) return open(breaker_.open_for, category, now);
  if (breaker_.failure_threshold > 0 && consecutive_failures_ >= breaker_.failure_threshold &&
      state_ == State::kClosed) {
    return open(breaker_.open_for, category, now);
  }
  return std::nullopt;
}

void TargetHealth::on_abandoned() {
  std::lock_guard lock(mu_);
  if (state_ == State::kHalfOpen) probe_in_flight_ = false;
}

TargetHealth::Bucket& TargetHealth::bucket(SteadyTime now) {
  const std::int64_t second = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  Bucket& b = buckets_[static_cast<std::size_t>(second) % kBuckets];
  if (b.second != second) b = Bucket{second, 0, 0};
  return b;
}

void TargetHealth::note_request(SteadyTime now) {
  std::lock_guard lock(mu_);
  ++bucket(now).requests;
}

std::optional<TargetHealth::Transition> TargetHealth::on_silent_route(SteadyTime now) {
  std::lock_guard lock(mu_);
  if (breaker_.failure_threshold == 0 || state_ == State::kOpen) return std::nullopt;
  return open(breaker_.open_for, ErrorCategory::kTimeout, now);
}

bool TargetHealth::try_spend_retry(SteadyTime now) {
  std::lock_guard lock(mu_);
  if (!retry_budget_left_locked(now)) return false;
  ++bucket(now).retries;
  return true;
}

bool TargetHealth::retry_budget_left(SteadyTime now) const {
  std::lock_guard lock(mu_);
  return retry_budget_left_locked(now);
}

bool TargetHealth::retry_budget_left_locked(SteadyTime now) const {
  const std::int64_t current = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::int64_t window_s =
      std::clamp<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(budget_.window).count(), 1, kBuckets);
  int requests = 0, retries = 0;
  for (const Bucket& b : buckets_) {
    if (b.second >= 0 && b.second > current - window_s && b.second <= current) {
      requests += b.requests;
      retries += b.retries;
    }
  }
  return static_cast<double>(retries) < budget_.ratio * requests + budget_.min_retries;
}

llmguard::TargetHealth TargetHealth::snapshot(SteadyTime now) const {
  std::lock_guard lock(mu_);
  llmguard::TargetHealth h;
  h.state = state_;
  h.consecutive_failures = consecutive_failures_;
  h.opened_by = opened_by_;
  if (state_ == State::kOpen && open_until_ > now) {
    h.reopens_in = std::chrono::ceil<milliseconds>(open_until_ - now);
  }
  return h;
}

void TargetHealth::reset() {
  std::lock_guard lock(mu_);
  state_ = State::kClosed;
  consecutive_failures_ = 0;
  opened_by_.reset();
  probe_in_flight_ = false;
}

}  // namespace llmguard::internal
