// The retry/fallback decisions, as pure functions of their inputs, so they can
// be tested as tables. The engine (call.cc) only carries them out.
#ifndef LLMGUARD_SRC_POLICY_H_
#define LLMGUARD_SRC_POLICY_H_

#include <chrono>
#include <cstdint>
#include <optional>

#include "llmguard/error.h"
#include "llmguard/options.h"

namespace llmguard::internal {

// The delay before retry number `retry` (1 for the first retry). `previous`
// is the last delay used (decorrelated jitter grows from it); `unit` is a
// uniform random number in [0, 1).
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, std::chrono::milliseconds previous,
                                        double unit);

enum class Step : std::uint8_t { kRetrySameTarget, kNextTarget, kFail };

struct Decision {
  Step step = Step::kFail;
  std::chrono::milliseconds delay{0};  // for kRetrySameTarget
  StepReason reason = StepReason::kCategoryDefault;
};

// Everything a retry decision depends on.
struct RetryInputs {
  const Error& error;
  int tries_on_target = 1;  // 1-based: the try that just failed
  const RetryPolicy& policy;
  std::chrono::milliseconds previous_backoff{0};       // the last delay used (decorrelated jitter grows from it)
  double unit = 0.5;                                   // uniform in [0, 1): the jitter's chance
  std::optional<std::chrono::milliseconds> time_left;  // until the call's deadline; nullopt: none
  bool retry_budget_left = true;                       // the target's retry budget allows one more retry
  bool silent = false;                                 // no byte of a reply arrived before the failure
  bool broken_stream = false;                          // a stream being restarted broke after delivering text
  bool later_targets = true;  // the chain goes on after this target (else staying is the only way on)
};

// What to do after a failed attempt, with the delay and the reason. A delay
// the provider asked for replaces the jittered backoff when within the cap.
Decision decide(const RetryInputs& in);
// The same with nothing but the error, the tries and a backoff already drawn.
Decision decide(const Error& error, int tries_on_target, const RetryPolicy& policy, std::chrono::milliseconds backoff);

// Whether a context_overflow on a target with window `failed_window` should
// skip a candidate with window `candidate_window` (both nullopt = unknown).
bool skip_for_context(std::optional<std::int64_t> failed_window, std::optional<std::int64_t> candidate_window);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_POLICY_H_
