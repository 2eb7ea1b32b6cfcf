// The retry/fallback decisions, as pure functions of their inputs, so they can
// be tested as tables. The engine (call.cc) only carries them out.
#ifndef LLMGUARD_SRC_POLICY_H_
#define LLMGUARD_SRC_POLICY_H_

#include <chrono>
#include <cstdint>
#include <optional>

#include "llmguard/options.h"
#include "llmguard/error.h"

namespace llmguard::internal {

// The delay before retry number `retry` (1 for the first retry). `previous`
// is the last delay used (decorrelated jitter grows from it); `unit` is a
// uniform random number in [0, 1).
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry,
                                        std::chrono::milliseconds previous, double unit);

enum class Step : std::uint8_t { kRetrySameTarget, kNextTarget, kFail };

struct Decision {
  Step step = Step::kFail;
  std::chrono::milliseconds delay{0};  // for kRetrySameTarget
};

// What to do after `error` ended try number `tries_on_target` (1-based) on a
// target. `backoff` is the jittered delay the policy would use for a plain
// retry; a delay the provider asked for replaces it when within the cap.
Decision decide(const Error& error, int tries_on_target, const RetryPolicy& policy,
                std::chrono::milliseconds backoff);

// Whether a context_overflow on a target with window `failed_window` should
// skip a candidate with window `candidate_window` (both nullopt = unknown).
bool skip_for_context(std::optional<std::int64_t> failed_window, std::optional<std::int64_t> candidate_window);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_POLICY_H_
