// A target's client-side limits: concurrency, and token buckets for requests
// and tokens per minute. Used from the client's event-loop thread only (every
// call's state machine runs there), so it takes no lock.
#ifndef LLMGUARD_SRC_LIMITER_H_
#define LLMGUARD_SRC_LIMITER_H_

#include <chrono>
#include <cstdint>
#include <optional>

#include "llmguard/options.h"

namespace llmguard::internal {

class TargetLimiter {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  TargetLimiter(const Target::Limits& limits, SteadyTime now);

  // admit's answer when every concurrency slot is taken: when one frees up
  // is not known, so waiters are woken by release() instead of a timer.
  static constexpr std::chrono::milliseconds kUntilReleased{-1};

  bool limited() const { return limited_; }
  // Counts an attempt of about `tokens` tokens and returns nullopt, or
  // returns how long until one could be admitted (counting nothing), or
  // kUntilReleased.
  std::optional<std::chrono::milliseconds> admit(std::int64_t tokens, SteadyTime now);
  // The attempt admitted last has ended.
  void release();
  // A 429 from this target: its request rate is halved (down to 1/16).
  void on_throttled(SteadyTime now);
  // An answer: the rate recovers a step towards the configured one.
  void on_answered(SteadyTime now);

 private:
  void refill(SteadyTime now);
  double request_rate_per_second() const;

  Target::Limits limits_;
  bool limited_;
  int in_flight_ = 0;
  double request_allowance_ = 0;  // requests that may start now
  double token_allowance_ = 0;    // may go below zero after a large request
  double rate_factor_ = 1.0;      // lowered by 429s
  SteadyTime last_refill_;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_LIMITER_H_
