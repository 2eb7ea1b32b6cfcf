// Usage accounting and budgets: shared by every call of a client, written
// from the loop thread, read from any thread.
#ifndef LLMGUARD_SRC_LEDGER_H_
#define LLMGUARD_SRC_LEDGER_H_

#include <absl/base/thread_annotations.h>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "llmguard/options.h"
#include "llmguard/types.h"
#include "llmguard/usage.h"

namespace llmguard::internal {

// Cost of `usage` at `price`: uncached prompt at the input rate, cache reads
// and writes at theirs, completion at the output rate.
double cost_of(const Usage& usage, const Price& price);

class Ledger {
 public:
  struct AttemptRecord {
    std::optional<ErrorCategory> failure;  // nullopt = success
    Usage usage;                           // reported or estimated (usage.estimated)
    std::optional<double> cost_usd;
    std::chrono::nanoseconds latency{0};
  };
  // The series an attempt counts in; views, so that recording into an
  // existing series copies no strings.
  struct KeyView {
    std::string_view target, model, caller;
  };
  void record(const KeyView& key, const AttemptRecord& attempt);
  UsageSnapshot snapshot() const;

 private:
  struct KeyLess {
    using is_transparent = void;
    using Tied = std::tuple<std::string_view, std::string_view, std::string_view>;
    static Tied tie(const UsageSnapshot::Key& k) { return {k.target, k.model, k.caller}; }
    static Tied tie(const KeyView& k) { return {k.target, k.model, k.caller}; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return tie(a) < tie(b);
    }
  };
  // std::mutex, not absl::Mutex: Debian's Abseil is not built with TSan, so its locks are
  // invisible to the race detector (and its deadlock detection costs ~0.4 µs per lock).
  mutable std::mutex mu_;
  std::map<UsageSnapshot::Key, UsageCounters, KeyLess> series_ ABSL_GUARDED_BY(mu_);
};

class BudgetBook {
 public:
  explicit BudgetBook(std::vector<Budget> budgets);

  struct Entry {
    std::size_t budget = 0;
    std::int64_t period = 0;  // the period the amounts were reserved in
    double usd = 0;
    std::int64_t tokens = 0;
  };
  struct Reservation {
    std::vector<Entry> entries;
    double usd = 0;
    std::int64_t tokens = 0;
  };

  bool applies_to(std::string_view caller_tag) const;
  bool has_usd_budget_for(std::string_view caller_tag) const;
  // Reserves on every budget that applies, or on none: a kBudgetExceeded
  // error names the budget that would be overrun.
  Result<Reservation> reserve(std::string_view caller_tag, double usd, std::int64_t tokens,
                              std::chrono::system_clock::time_point now);
  // Replaces a reservation by what was really spent; spending more than was
  // reserved counts as an overrun too. Amounts reserved in a period that has
  // since ended are dropped with it, never carried over.
  void settle(const Reservation& reservation, double usd, std::int64_t tokens,
              std::chrono::system_clock::time_point now);
  std::vector<llmguard::BudgetState> states(std::chrono::system_clock::time_point now) const;

  // The period a budget is in at `now` (UTC): hours, days or months since
  // the epoch; 0 for kTotal.
  static std::int64_t period_of(Budget::Period period, std::chrono::system_clock::time_point now);

 private:
  struct State {
    Budget budget;
    std::int64_t period = 0;
    double spent_usd = 0, reserved_usd = 0;
    std::int64_t spent_tokens = 0, reserved_tokens = 0;
    double overrun_usd = 0;
    std::int64_t overrun_tokens = 0;
  };
  void roll(State& state, std::chrono::system_clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // std::mutex for the reason given at Ledger::mu_.
  mutable std::mutex mu_;
  std::vector<State> states_ ABSL_GUARDED_BY(mu_);
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_LEDGER_H_
