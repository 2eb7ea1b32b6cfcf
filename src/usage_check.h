// Usage as a provider reported it, and the one rule that turns it into the
// Usage llmguard accounts. Providers (and proxies in front of them) send
// negative, absurdly large, fractional, inconsistent or missing counts; a
// count is never trusted beyond what cannot hurt the ledger or a budget.
#ifndef LLMGUARD_SRC_USAGE_CHECK_H_
#define LLMGUARD_SRC_USAGE_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "llmguard/types.h"

namespace llmguard::internal {

// The largest count accounted (about 1.1e12 tokens): sums and costs of such
// counts stay exact in int64 and finite in double.
inline constexpr std::int64_t kMaxTokenCount = std::int64_t{1} << 40;

// One token count as the reply carried it.
struct ReportedCount {
  enum class State : std::uint8_t {
    kAbsent,   // no such field, or null
    kValid,    // an integer, or a finite double rounded away from zero; may be negative
    kInvalid,  // present but not a number (string, bool, ...), or outside int64
  };
  State state = State::kAbsent;
  std::int64_t value = 0;  // meaningful when kValid

  static constexpr ReportedCount of(std::int64_t v) { return {State::kValid, v}; }
  static constexpr ReportedCount invalid() { return {State::kInvalid, 0}; }
  constexpr bool present() const { return state != State::kAbsent; }
  constexpr bool operator==(const ReportedCount&) const = default;
};

// The sum of counts reported as parts (Anthropic's prompt = input + cache
// reads + cache writes; Gemini's completion = candidates + thoughts): absent
// when every part is, invalid when any part is, negative when any part is
// (so that a negative part is not hidden by a positive one), else the
// saturating sum. Absent parts count as 0 beside present ones.
ReportedCount sum_counts(std::initializer_list<ReportedCount> parts);

// A reply's usage in the common Usage's shape: `prompt` counts every prompt
// token, cache reads and writes included; `cached`, `cache_write` are parts
// of it and `reasoning` is part of `completion`. Numbers are as sent.
struct ReportedUsage {
  bool reported = false;  // the reply carried a usage object (null is none)
  ReportedCount prompt, completion, cached, cache_write, reasoning, total;
  bool operator==(const ReportedUsage&) const = default;
};

// Anthropic's usage as its parts: input_tokens leaves out cache reads and
// writes, which the common Usage counts in the prompt.
struct AnthropicUsageParts {
  ReportedCount input, output, cache_read, cache_write;
  ReportedCount prompt() const { return sum_counts({input, cache_read, cache_write}); }
};

// The Usage to account for a successful attempt. Pure; the rule is:
// - nothing reported: the estimates, `estimated = true`;
// - a prompt or completion count that is absent, negative or invalid is
//   replaced by its estimate and the result is `estimated`; a cached,
//   cache-write, reasoning or total count that is negative or invalid is
//   dropped (0, or derived for total) and the result is `estimated` too;
//   absent ones are 0 (or derived) and not estimates;
// - every count is clamped to [0, kMaxTokenCount], estimates included;
// - cached ≤ prompt, cache_write ≤ prompt - cached, reasoning ≤ completion;
// - total_tokens = max(reported total, prompt + completion).
// An `estimated` Usage settles a budget at its reservation, which bounds what
// a wrong estimate could undercount.
Usage checked_usage(const ReportedUsage& reported, std::int64_t prompt_estimate, std::int64_t completion_estimate);

// Rough token estimate for text (about 4 bytes a token in English).
std::int64_t estimate_tokens(std::size_t bytes);

// Bytes of what the model produced: content, refusal and tool-call
// arguments; `estimate_tokens` of it is the completion estimate.
std::size_t reply_bytes(const ChatResponse& response);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_USAGE_CHECK_H_
