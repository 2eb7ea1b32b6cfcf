// The Prometheus families of Client::metrics() beyond usage: budgets and
// breakers, as gauges, and the shared state's work (src/usage.cc writes them beside the usage families).
#ifndef LLMGUARD_SRC_METRICS_H_
#define LLMGUARD_SRC_METRICS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmguard/types.h"
#include "llmguard/usage.h"

namespace llmguard::internal {

// "total", "hour", "day", "month".
std::string_view period_name(Budget::Period period);
// llmguard_budget_{limit,spent,reserved,overrun}{budget="<index>",caller,period,unit="usd"|"tokens"}.
std::string budget_metrics(const std::vector<BudgetState>& budgets);
// llmguard_breaker_state{target,state} (1 for the state the breaker is in) and
// llmguard_breaker_consecutive_failures{target}.
std::string breaker_metrics(const std::vector<llmguard::TargetHealth>& targets);
// With shared_state: llmguard_shared_state_up (1 while Redis answers),
// llmguard_shared_state_round_trips_total and llmguard_shared_state_scripts_total.
std::string shared_state_metrics(bool reachable, std::uint64_t round_trips, std::uint64_t scripts);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_METRICS_H_
