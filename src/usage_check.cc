#include "usage_check.h"

#include <algorithm>
#include <limits>

namespace llmguard::internal {
namespace {

std::int64_t clamp_count(std::int64_t n) { return std::clamp<std::int64_t>(n, 0, kMaxTokenCount); }

bool usable(const ReportedCount& c) { return c.state == ReportedCount::State::kValid && c.value >= 0; }

}  // namespace

ReportedCount sum_counts(std::initializer_list<ReportedCount> parts) {
  ReportedCount out;
  std::int64_t negative = 0;
  for (const ReportedCount& p : parts) {
    if (p.state == ReportedCount::State::kAbsent) continue;
    if (p.state == ReportedCount::State::kInvalid) return ReportedCount::invalid();
    out.state = ReportedCount::State::kValid;
    if (p.value < 0) {
      negative = std::min(negative, p.value);
    } else if (out.value > std::numeric_limits<std::int64_t>::max() - p.value) {
      out.value = std::numeric_limits<std::int64_t>::max();
    } else {
      out.value += p.value;
    }
  }
  if (negative < 0) out.value = negative;
  return out;
}

Usage checked_usage(const ReportedUsage& reported, std::int64_t prompt_estimate, std::int64_t completion_estimate) {
  Usage u;
  prompt_estimate = clamp_count(prompt_estimate);
  completion_estimate = clamp_count(completion_estimate);
  if (!reported.reported) {
    u.prompt_tokens = prompt_estimate;
    u.completion_tokens = completion_estimate;
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    u.estimated = true;
    return u;
  }
  // A required count stands in for its estimate unless usable; an optional
  // one (a part, or the total) is only suspicious when present and unusable.
  auto required = [&u](const ReportedCount& c, std::int64_t estimate) {
    if (usable(c)) return clamp_count(c.value);
    u.estimated = true;
    return estimate;
  };
  auto optional = [&u](const ReportedCount& c) {
    if (usable(c)) return clamp_count(c.value);
    if (c.present()) u.estimated = true;
    return std::int64_t{0};
  };
  u.prompt_tokens = required(reported.prompt, prompt_estimate);
  u.completion_tokens = required(reported.completion, completion_estimate);
  u.cached_tokens = std::min(optional(reported.cached), u.prompt_tokens);
  u.cache_write_tokens = std::min(optional(reported.cache_write), u.prompt_tokens - u.cached_tokens);
  u.reasoning_tokens = std::min(optional(reported.reasoning), u.completion_tokens);
  // Both are at most 2^40: the sum cannot overflow.
  u.total_tokens = std::max(optional(reported.total), u.prompt_tokens + u.completion_tokens);
  return u;
}

std::int64_t estimate_tokens(std::size_t bytes) { return static_cast<std::int64_t>(bytes / 4 + (bytes % 4 != 0)); }

std::size_t reply_bytes(const ChatResponse& response) {
  std::size_t n = response.content.size() + response.refusal.size();
  for (const ToolCall& call : response.tool_calls) n += call.arguments_json.size();
  return n;
}

}  // namespace llmguard::internal
