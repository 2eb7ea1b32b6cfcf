#include "limiter.h"

#include <algorithm>
#include <cmath>

namespace llmguard::internal {

using std::chrono::milliseconds;

namespace {

constexpr double kMinRateFactor = 1.0 / 16;

milliseconds ceil_ms(double seconds) {
  return milliseconds(static_cast<std::int64_t>(std::ceil(std::max(seconds, 0.0) * 1000.0)));
}

}  // namespace

TargetLimiter::TargetLimiter(const Target::Limits& limits, SteadyTime now)
    : limits_(limits),
      limited_(limits.max_concurrency || limits.requests_per_minute || limits.tokens_per_minute),
      last_refill_(now) {
  // Start with a full minute's allowance, as providers' own limiters do.
  if (limits_.requests_per_minute) request_allowance_ = *limits_.requests_per_minute;
  if (limits_.tokens_per_minute) token_allowance_ = static_cast<double>(*limits_.tokens_per_minute);
}

double TargetLimiter::request_rate_per_second() const {
  return limits_.requests_per_minute ? *limits_.requests_per_minute / 60.0 * rate_factor_ : 0;
}

void TargetLimiter::refill(SteadyTime now) {
  if (now <= last_refill_) return;
  const double seconds = std::chrono::duration<double>(now - last_refill_).count();
  last_refill_ = now;
  if (limits_.requests_per_minute) {
    request_allowance_ =
        std::min(*limits_.requests_per_minute, request_allowance_ + seconds * request_rate_per_second());
  }
  if (limits_.tokens_per_minute) {
    const auto capacity = static_cast<double>(*limits_.tokens_per_minute);
    token_allowance_ = std::min(capacity, token_allowance_ + seconds * capacity / 60.0);
  }
}

std::optional<milliseconds> TargetLimiter::admit(std::int64_t tokens, SteadyTime now) {
  if (!limited_) return std::nullopt;
  refill(now);
  // A full house is reported first: the buckets are looked at again when a
  // slot frees and the waiter is woken.
  if (limits_.max_concurrency && in_flight_ >= *limits_.max_concurrency) return kUntilReleased;
  milliseconds wait{0};
  if (limits_.requests_per_minute && request_allowance_ < 1.0) {
    wait = std::max(wait, ceil_ms((1.0 - request_allowance_) / request_rate_per_second()));
  }
  if (limits_.tokens_per_minute) {
    // A request larger than a minute's allowance goes when the bucket is full.
    const auto capacity = static_cast<double>(*limits_.tokens_per_minute);
    const double needed = std::min(static_cast<double>(tokens), capacity);
    if (token_allowance_ < needed) wait = std::max(wait, ceil_ms((needed - token_allowance_) / (capacity / 60.0)));
  }
  if (wait.count() > 0) return wait;
  ++in_flight_;
  if (limits_.requests_per_minute) request_allowance_ -= 1.0;
  if (limits_.tokens_per_minute) token_allowance_ -= static_cast<double>(tokens);
  return std::nullopt;
}

void TargetLimiter::release() {
  if (limited_ && in_flight_ > 0) --in_flight_;
}

void TargetLimiter::on_throttled(SteadyTime now) {
  if (!limits_.requests_per_minute) return;
  refill(now);
  rate_factor_ = std::max(kMinRateFactor, rate_factor_ / 2);
  request_allowance_ = std::min(request_allowance_, 0.0);  // no burst straight back into the limit
}

void TargetLimiter::on_answered(SteadyTime now) {
  if (!limits_.requests_per_minute || rate_factor_ >= 1.0) return;
  refill(now);
  rate_factor_ = std::min(1.0, rate_factor_ * 1.25);
}

}  // namespace llmguard::internal
