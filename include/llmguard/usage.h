// The usage ledger's read side: counters per target, model and caller tag,
// as a struct, JSON, or Prometheus text exposition format.
//
//   std::string metrics = client->usage().to_prometheus();  // serve at /metrics
#ifndef LLMGUARD_USAGE_H_
#define LLMGUARD_USAGE_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "llmguard/options.h"

namespace llmguard {

struct UsageCounters {
  std::int64_t attempts = 0;  // upstream requests sent
  std::int64_t successes = 0;
  std::int64_t failures = 0;
  // Failures by ErrorCategory (index = the enum's value).
  std::array<std::int64_t, 15> failures_by_category{};
  // Tokens the provider reported.
  std::int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0, cache_write_tokens = 0,
               reasoning_tokens = 0;
  // Tokens llmguard estimated because the provider reported none.
  std::int64_t estimated_prompt_tokens = 0, estimated_completion_tokens = 0;
  double cost_usd = 0;            // from reported usage
  double estimated_cost_usd = 0;  // from estimated usage
  // Attempt latency histogram (seconds): counts per bucket upper bound,
  // cumulative as Prometheus wants; the last bound is +Inf.
  static constexpr std::array<double, 12> kLatencyBounds = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 1e300};
  std::array<std::int64_t, 12> latency_buckets{};
  double latency_sum_seconds = 0;

  void add(const UsageCounters& other);
};

// How metrics are labelled.
struct PrometheusOptions {
  // A `caller` label (ChatRequest::caller_tag) on the usage series. Off, the
  // series are summed per target and model: one caller tag per end user
  // would give the metrics store a series per user.
  bool caller_label = true;
};

struct UsageSnapshot {
  UsageCounters total;
  std::map<std::string, UsageCounters> by_target;
  std::map<std::string, UsageCounters> by_model;
  std::map<std::string, UsageCounters> by_caller;  // "" for untagged calls
  // Finest grain: (target, model, caller) -> counters. The maps above are
  // sums of these.
  struct Key {
    std::string target, model, caller;
    auto operator<=>(const Key&) const = default;
  };
  std::map<Key, UsageCounters> series;

  std::string to_json() const;
  // Metric families: llmguard_attempts_total, llmguard_failures_total,
  // llmguard_tokens_total, llmguard_cost_usd_total,
  // llmguard_attempt_duration_seconds (histogram). Client::metrics() adds
  // budgets and breakers.
  std::string to_prometheus(const PrometheusOptions& options = {}) const;
};

// A budget's current period, as Client::budgets() reports it.
struct BudgetState {
  Budget budget;
  double spent_usd = 0, reserved_usd = 0;
  std::int64_t spent_tokens = 0, reserved_tokens = 0;
  // What replies billed beyond their reservations this period (included
  // in spent_*): the only way spent can pass the limit (docs/usage.md).
  double overrun_usd = 0;
  std::int64_t overrun_tokens = 0;
};

}  // namespace llmguard

#endif  // LLMGUARD_USAGE_H_
