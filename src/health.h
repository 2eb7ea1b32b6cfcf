// Shared, per-target state that outlives calls: the circuit breaker and the
// retry budget. Calls consult it from the loop thread; users read snapshots
// from any thread, hence the lock.
#ifndef LLMGUARD_SRC_HEALTH_H_
#define LLMGUARD_SRC_HEALTH_H_

#include <absl/base/thread_annotations.h>

#include <array>
#include <chrono>
#include <mutex>
#include <optional>

#include "llmguard/options.h"
#include "llmguard/types.h"

namespace llmguard::internal {

class TargetHealth {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using State = llmguard::TargetHealth::State;

  TargetHealth(BreakerPolicy breaker, RetryBudget budget) : breaker_(breaker), budget_(budget) {}

  // May a call use this target now? In half-open state one caller at a time
  // is let through as the probe.
  bool allow(SteadyTime now);
  // Outcome of an attempt let through by allow(). Returns the breaker's
  // transition, if any (for events): kOpen with how long, or kClosed.
  struct Transition {
    State to;
    std::chrono::milliseconds open_for{0};
  };
  std::optional<Transition> on_success(SteadyTime now);
  std::optional<Transition> on_failure(ErrorCategory category, SteadyTime now);
  // Another process of the fleet opened this target's breaker, `left` more
  // to go: opens it as long, unless it is open longer already.
  void open_from_fleet(ErrorCategory why, std::chrono::milliseconds left, SteadyTime now);
  // The attempt was abandoned (cancelled): a probe slot is released.
  void on_abandoned();

  // Counts a first attempt (for the budget); asks whether a retry may be
  // spent, and counts it if so.
  void note_request(SteadyTime now);
  bool try_spend_retry(SteadyTime now);
  // A timeout before any byte of a reply: the route is dead, so the target
  // is out at once for BreakerPolicy::open_for (then probed), rather than
  // after failure_threshold more such waits.
  std::optional<Transition> on_silent_route(SteadyTime now);
  // Whether try_spend_retry would succeed now (spending nothing).
  bool retry_budget_left(SteadyTime now) const;

  llmguard::TargetHealth snapshot(SteadyTime now) const;
  void reset();

 private:
  struct Bucket {
    std::int64_t second = -1;
    int requests = 0;
    int retries = 0;
  };
  static constexpr std::size_t kBuckets = 64;  // one per second of the window
  Bucket& bucket(SteadyTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool retry_budget_left_locked(SteadyTime now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<Transition> open(std::chrono::milliseconds for_how_long, ErrorCategory why, SteadyTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const BreakerPolicy breaker_;
  const RetryBudget budget_;
  // std::mutex for the reason given at Ledger::mu_ (src/ledger.h).
  mutable std::mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kClosed;
  int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  SteadyTime open_until_ ABSL_GUARDED_BY(mu_){};
  std::optional<ErrorCategory> opened_by_ ABSL_GUARDED_BY(mu_);
  bool probe_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::array<Bucket, kBuckets> buckets_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_HEALTH_H_
