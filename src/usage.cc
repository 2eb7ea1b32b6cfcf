#include "llmguard/usage.h"

#include <fmt/format.h>

#include <array>

#include "json_writer.h"
#include "llmguard/providers.h"
#include "metrics.h"

namespace llmguard {
namespace {

using internal::JsonWriter;

void write_counters(JsonWriter& w, const UsageCounters& c) {
  w.begin_object();
  w.key("attempts").number(c.attempts).key("successes").number(c.successes).key("failures").number(c.failures);
  w.key("failures_by_category").begin_object();
  for (std::size_t i = 0; i < c.failures_by_category.size(); ++i) {
    if (c.failures_by_category[i] == 0) continue;
    w.key(to_string(static_cast<ErrorCategory>(i))).number(c.failures_by_category[i]);
  }
  w.end_object();
  w.key("prompt_tokens").number(c.prompt_tokens).key("completion_tokens").number(c.completion_tokens);
  w.key("cached_tokens").number(c.cached_tokens).key("cache_write_tokens").number(c.cache_write_tokens);
  w.key("reasoning_tokens").number(c.reasoning_tokens);
  w.key("estimated_prompt_tokens").number(c.estimated_prompt_tokens);
  w.key("estimated_completion_tokens").number(c.estimated_completion_tokens);
  w.key("cost_usd").number(c.cost_usd).key("estimated_cost_usd").number(c.estimated_cost_usd);
  w.key("latency_sum_seconds").number(c.latency_sum_seconds);
  w.end_object();
}

void write_map(JsonWriter& w, std::string_view name, const std::map<std::string, UsageCounters>& m) {
  w.key(name).begin_object();
  for (const auto& [key, counters] : m) {
    w.key(key);
    write_counters(w, counters);
  }
  w.end_object();
}

// Label values escape backslash, double quote and newline (exposition format).
std::string label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  if (v >= 1e300) return "+Inf";
  return fmt::format("{}", v);
}

}  // namespace

void UsageCounters::add(const UsageCounters& o) {
  attempts += o.attempts;
  successes += o.successes;
  failures += o.failures;
  for (std::size_t i = 0; i < failures_by_category.size(); ++i) failures_by_category[i] += o.failures_by_category[i];
  prompt_tokens += o.prompt_tokens;
  completion_tokens += o.completion_tokens;
  cached_tokens += o.cached_tokens;
  cache_write_tokens += o.cache_write_tokens;
  reasoning_tokens += o.reasoning_tokens;
  estimated_prompt_tokens += o.estimated_prompt_tokens;
  estimated_completion_tokens += o.estimated_completion_tokens;
  cost_usd += o.cost_usd;
  estimated_cost_usd += o.estimated_cost_usd;
  for (std::size_t i = 0; i < latency_buckets.size(); ++i) latency_buckets[i] += o.latency_buckets[i];
  latency_sum_seconds += o.latency_sum_seconds;
}

std::string UsageSnapshot::to_json() const {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("total");
  write_counters(w, total);
  write_map(w, "by_target", by_target);
  write_map(w, "by_model", by_model);
  write_map(w, "by_caller", by_caller);
  w.end_object();
  return out;
}

namespace {

// The usage families over `series`, with or without the caller label.
std::string prometheus_text(const std::map<UsageSnapshot::Key, UsageCounters>& series, bool with_caller) {
  using Key = UsageSnapshot::Key;
  std::string out;
  auto labels = [with_caller](const Key& k) {
    if (!with_caller) return fmt::format("target=\"{}\",model=\"{}\"", label_value(k.target), label_value(k.model));
    return fmt::format("target=\"{}\",model=\"{}\",caller=\"{}\"", label_value(k.target), label_value(k.model),
                       label_value(k.caller));
  };
  auto family = [&out](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("llmguard_attempts_total", "counter", "Upstream requests sent, by outcome.");
  for (const auto& [k, c] : series) {
    out += fmt::format("llmguard_attempts_total{{{},outcome=\"success\"}} {}\n", labels(k), c.successes);
    out += fmt::format("llmguard_attempts_total{{{},outcome=\"failure\"}} {}\n", labels(k), c.failures);
  }
  family("llmguard_failures_total", "counter", "Failed upstream attempts by error category.");
  for (const auto& [k, c] : series) {
    for (std::size_t i = 0; i < c.failures_by_category.size(); ++i) {
      if (c.failures_by_category[i] == 0) continue;
      out += fmt::format("llmguard_failures_total{{{},category=\"{}\"}} {}\n", labels(k),
                         to_string(static_cast<ErrorCategory>(i)), c.failures_by_category[i]);
    }
  }
  family("llmguard_tokens_total", "counter", "Tokens by kind; estimated=\"true\" where the provider reported none.");
  for (const auto& [k, c] : series) {
    const std::pair<std::string_view, std::int64_t> reported[] = {{"prompt", c.prompt_tokens},
                                                                  {"completion", c.completion_tokens},
                                                                  {"cached", c.cached_tokens},
                                                                  {"cache_write", c.cache_write_tokens},
                                                                  {"reasoning", c.reasoning_tokens}};
    for (const auto& [kind, n] : reported) {
      out += fmt::format("llmguard_tokens_total{{{},kind=\"{}\",estimated=\"false\"}} {}\n", labels(k), kind, n);
    }
    out += fmt::format("llmguard_tokens_total{{{},kind=\"prompt\",estimated=\"true\"}} {}\n", labels(k),
                       c.estimated_prompt_tokens);
    out += fmt::format("llmguard_tokens_total{{{},kind=\"completion\",estimated=\"true\"}} {}\n", labels(k),
                       c.estimated_completion_tokens);
  }
  family("llmguard_cost_usd_total", "counter", "Cost in US dollars from the price table.");
  for (const auto& [k, c] : series) {
    out += fmt::format("llmguard_cost_usd_total{{{},estimated=\"false\"}} {}\n", labels(k), number(c.cost_usd));
    out +=
        fmt::format("llmguard_cost_usd_total{{{},estimated=\"true\"}} {}\n", labels(k), number(c.estimated_cost_usd));
  }
  family("llmguard_attempt_duration_seconds", "histogram", "Upstream attempt latency.");
  for (const auto& [k, c] : series) {
    std::int64_t cumulative = 0;
    for (std::size_t i = 0; i < c.latency_buckets.size(); ++i) {
      cumulative += c.latency_buckets[i];
      out += fmt::format("llmguard_attempt_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels(k),
                         number(UsageCounters::kLatencyBounds[i]), cumulative);
    }
    out += fmt::format("llmguard_attempt_duration_seconds_sum{{{}}} {}\n", labels(k), number(c.latency_sum_seconds));
    out += fmt::format("llmguard_attempt_duration_seconds_count{{{}}} {}\n", labels(k), c.attempts);
  }
  return out;
}

}  // namespace

std::string UsageSnapshot::to_prometheus(const PrometheusOptions& options) const {
  if (!options.caller_label) {
    std::map<Key, UsageCounters> merged;  // the same series without the caller: one per target and model
    for (const auto& [k, c] : series) merged[Key{k.target, k.model, ""}].add(c);
    return prometheus_text(merged, false);
  }
  return prometheus_text(series, true);
}

namespace internal {

std::string_view period_name(Budget::Period period) {
  switch (period) {
    case Budget::Period::kTotal:
      return "total";
    case Budget::Period::kHour:
      return "hour";
    case Budget::Period::kDay:
      return "day";
    case Budget::Period::kMonth:
      return "month";
  }
  return "total";
}

std::string budget_metrics(const std::vector<BudgetState>& budgets) {
  std::string out;
  struct Family {
    std::string_view name, help;
    double (*usd)(const BudgetState&);
    std::int64_t (*tokens)(const BudgetState&);
  };
  const Family families[] = {
      {"llmguard_budget_limit", "The budget's limit per period.",
       [](const BudgetState& b) { return b.budget.usd.value_or(0); },
       [](const BudgetState& b) { return b.budget.tokens.value_or(0); }},
      {"llmguard_budget_spent", "Settled this period (overruns included).",
       [](const BudgetState& b) { return b.spent_usd; }, [](const BudgetState& b) { return b.spent_tokens; }},
      {"llmguard_budget_reserved", "Held by calls in flight.", [](const BudgetState& b) { return b.reserved_usd; },
       [](const BudgetState& b) { return b.reserved_tokens; }},
      {"llmguard_budget_overrun", "Billed this period beyond what reservations covered.",
       [](const BudgetState& b) { return b.overrun_usd; }, [](const BudgetState& b) { return b.overrun_tokens; }},
  };
  for (const Family& f : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", f.name, f.help, f.name);
    for (std::size_t i = 0; i < budgets.size(); ++i) {
      const BudgetState& b = budgets[i];
      const std::string labels = fmt::format("budget=\"{}\",caller=\"{}\",period=\"{}\"", i,
                                             label_value(b.budget.caller_tag), period_name(b.budget.period));
      if (b.budget.usd) out += fmt::format("{}{{{},unit=\"usd\"}} {}\n", f.name, labels, number(f.usd(b)));
      if (b.budget.tokens) out += fmt::format("{}{{{},unit=\"tokens\"}} {}\n", f.name, labels, f.tokens(b));
    }
  }
  return out;
}

std::string breaker_metrics(const std::vector<llmguard::TargetHealth>& targets) {
  std::string out =
      "# HELP llmguard_breaker_state The target's circuit breaker: 1 for its state, 0 for the others.\n"
      "# TYPE llmguard_breaker_state gauge\n";
  constexpr std::pair<llmguard::TargetHealth::State, std::string_view> kStates[] = {
      {llmguard::TargetHealth::State::kClosed, "closed"},
      {llmguard::TargetHealth::State::kHalfOpen, "half_open"},
      {llmguard::TargetHealth::State::kOpen, "open"}};
  for (const llmguard::TargetHealth& t : targets) {
    for (const auto& [state, name] : kStates) {
      out += fmt::format("llmguard_breaker_state{{target=\"{}\",state=\"{}\"}} {}\n", label_value(t.target), name,
                         t.state == state ? 1 : 0);
    }
  }
  out +=
      "# HELP llmguard_breaker_consecutive_failures Failures in a row the breaker has counted.\n"
      "# TYPE llmguard_breaker_consecutive_failures gauge\n";
  for (const llmguard::TargetHealth& t : targets) {
    out += fmt::format("llmguard_breaker_consecutive_failures{{target=\"{}\"}} {}\n", label_value(t.target),
                       t.consecutive_failures);
  }
  return out;
}

std::string shared_state_metrics(bool reachable, std::uint64_t round_trips, std::uint64_t scripts) {
  return fmt::format(
      "# HELP llmguard_shared_state_up Whether the shared state (Redis) answers: 0 while calls go on without it.\n"
      "# TYPE llmguard_shared_state_up gauge\n"
      "llmguard_shared_state_up {}\n"
      "# HELP llmguard_shared_state_round_trips_total Round trips to the shared state, each a pipeline of scripts.\n"
      "# TYPE llmguard_shared_state_round_trips_total counter\n"
      "llmguard_shared_state_round_trips_total {}\n"
      "# HELP llmguard_shared_state_scripts_total Scripts the shared state ran: admissions, settlements, renewals, "
      "breaker news.\n"
      "# TYPE llmguard_shared_state_scripts_total counter\n"
      "llmguard_shared_state_scripts_total {}\n",
      reachable ? 1 : 0, round_trips, scripts);
}

}  // namespace internal

}  // namespace llmguard
