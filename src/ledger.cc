#include "ledger.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace llmguard::internal {

double cost_of(const Usage& usage, const Price& price) {
  const double read_rate = price.cached_input_per_mtok.value_or(price.input_per_mtok);
  const double write_rate = price.cache_write_per_mtok.value_or(price.input_per_mtok);
  const auto uncached = std::max<std::int64_t>(0, usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens);
  return (static_cast<double>(uncached) * price.input_per_mtok + static_cast<double>(usage.cached_tokens) * read_rate +
          static_cast<double>(usage.cache_write_tokens) * write_rate +
          static_cast<double>(usage.completion_tokens) * price.output_per_mtok) /
         1e6;
}

void Ledger::record(const KeyView& key, const AttemptRecord& a) {
  std::lock_guard lock(mu_);
  auto it = series_.find(key);
  if (it == series_.end()) {
    it = series_
             .emplace(UsageSnapshot::Key{std::string(key.target), std::string(key.model), std::string(key.caller)},
                      UsageCounters{})
             .first;
  }
  UsageCounters& c = it->second;
  ++c.attempts;
  if (a.failure) {
    ++c.failures;
    ++c.failures_by_category[static_cast<std::size_t>(*a.failure)];
  } else {
    ++c.successes;
  }
  if (a.usage.estimated) {
    c.estimated_prompt_tokens += a.usage.prompt_tokens;
    c.estimated_completion_tokens += a.usage.completion_tokens;
    c.estimated_cost_usd += a.cost_usd.value_or(0);
  } else {
    c.prompt_tokens += a.usage.prompt_tokens;
    c.completion_tokens += a.usage.completion_tokens;
    c.cached_tokens += a.usage.cached_tokens;
    c.cache_write_tokens += a.usage.cache_write_tokens;
    c.reasoning_tokens += a.usage.reasoning_tokens;
    c.cost_usd += a.cost_usd.value_or(0);
  }
  const double seconds = std::chrono::duration<double>(a.latency).count();
  c.latency_sum_seconds += seconds;
  for (std::size_t i = 0; i < UsageCounters::kLatencyBounds.size(); ++i) {
    if (seconds <= UsageCounters::kLatencyBounds[i]) {
      ++c.latency_buckets[i];
      break;
    }
  }
}

UsageSnapshot Ledger::snapshot() const {
  UsageSnapshot s;
  {
    std::lock_guard lock(mu_);
    s.series.insert(series_.begin(), series_.end());
  }
  for (const auto& [key, counters] : s.series) {
    s.total.add(counters);
    s.by_target[key.target].add(counters);
    s.by_model[key.model].add(counters);
    s.by_caller[key.caller].add(counters);
  }
  return s;
}

BudgetBook::BudgetBook(std::vector<Budget> budgets) {
  for (auto& b : budgets) states_.push_back(State{.budget = std::move(b)});
}

bool BudgetBook::applies_to(std::string_view caller_tag) const {
  std::lock_guard lock(mu_);
  return std::any_of(states_.begin(), states_.end(),
                     [&](const State& s) { return s.budget.caller_tag.empty() || s.budget.caller_tag == caller_tag; });
}

bool BudgetBook::has_usd_budget_for(std::string_view caller_tag) const {
  std::lock_guard lock(mu_);
  return std::any_of(states_.begin(), states_.end(), [&](const State& s) {
    return s.budget.usd && (s.budget.caller_tag.empty() || s.budget.caller_tag == caller_tag);
  });
}

std::int64_t BudgetBook::period_of(Budget::Period period, std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  switch (period) {
    case Budget::Period::kTotal:
      return 0;
    case Budget::Period::kHour:
      return floor<hours>(now).time_since_epoch().count();
    case Budget::Period::kDay:
      return floor<days>(now).time_since_epoch().count();
    case Budget::Period::kMonth: {
      const year_month_day date{floor<days>(now)};
      return static_cast<std::int64_t>(static_cast<int>(date.year())) * 12 +
             static_cast<std::int64_t>(static_cast<unsigned>(date.month())) - 1;
    }
  }
  return 0;
}

void BudgetBook::roll(State& s, std::chrono::system_clock::time_point now) {
  const std::int64_t period = period_of(s.budget.period, now);
  if (period == s.period) return;
  // A new period starts empty; what the old one spent stays in the ledger.
  s.period = period;
  s.spent_usd = s.reserved_usd = s.overrun_usd = 0;
  s.spent_tokens = s.reserved_tokens = s.overrun_tokens = 0;
}

Result<BudgetBook::Reservation> BudgetBook::reserve(std::string_view caller_tag, double usd, std::int64_t tokens,
                                                    std::chrono::system_clock::time_point now) {
  std::lock_guard lock(mu_);
  Reservation r;
  r.usd = usd;
  r.tokens = tokens;
  for (std::size_t i = 0; i < states_.size(); ++i) {
    State& s = states_[i];
    if (!s.budget.caller_tag.empty() && s.budget.caller_tag != caller_tag) continue;
    roll(s, now);
    const std::string scope =
        s.budget.caller_tag.empty() ? "client" : fmt::format("caller \"{}\"", s.budget.caller_tag);
    if (s.budget.usd && s.spent_usd + s.reserved_usd + usd > *s.budget.usd + 1e-12) {
      return make_error(ErrorCategory::kBudgetExceeded,
                        fmt::format("the {} budget of ${:.6f} would be exceeded: ${:.6f} spent, ${:.6f} reserved, "
                                    "this attempt reserves ${:.6f}",
                                    scope, *s.budget.usd, s.spent_usd, s.reserved_usd, usd));
    }
    if (s.budget.tokens && s.spent_tokens + s.reserved_tokens + tokens > *s.budget.tokens) {
      return make_error(ErrorCategory::kBudgetExceeded,
                        fmt::format("the {} budget of {} tokens would be exceeded: {} spent, {} reserved, "
                                    "this attempt reserves {}",
                                    scope, *s.budget.tokens, s.spent_tokens, s.reserved_tokens, tokens));
    }
    r.entries.push_back({i, s.period, usd, tokens});
  }
  for (const Entry& e : r.entries) {
    states_[e.budget].reserved_usd += e.usd;
    states_[e.budget].reserved_tokens += e.tokens;
  }
  return r;
}

void BudgetBook::settle(const Reservation& reservation, double usd, std::int64_t tokens,
                        std::chrono::system_clock::time_point now) {
  std::lock_guard lock(mu_);
  for (const Entry& e : reservation.entries) {
    State& s = states_[e.budget];
    roll(s, now);
    if (s.period != e.period) continue;  // its period ended: dropped with it
    s.reserved_usd = std::max(0.0, s.reserved_usd - e.usd);
    s.reserved_tokens = std::max<std::int64_t>(0, s.reserved_tokens - e.tokens);
    s.spent_usd += usd;
    s.spent_tokens += tokens;
    s.overrun_usd += std::max(0.0, usd - e.usd);
    s.overrun_tokens += std::max<std::int64_t>(0, tokens - e.tokens);
  }
}

std::vector<llmguard::BudgetState> BudgetBook::states(std::chrono::system_clock::time_point now) const {
  std::lock_guard lock(mu_);
  std::vector<llmguard::BudgetState> out;
  for (const State& s : states_) {
    llmguard::BudgetState b{.budget = s.budget};
    if (period_of(s.budget.period, now) == s.period) {
      b.spent_usd = s.spent_usd;
      b.reserved_usd = s.reserved_usd;
      b.spent_tokens = s.spent_tokens;
      b.reserved_tokens = s.reserved_tokens;
      b.overrun_usd = s.overrun_usd;
      b.overrun_tokens = s.overrun_tokens;
    }
    out.push_back(b);
  }
  return out;
}

}  // namespace llmguard::internal
