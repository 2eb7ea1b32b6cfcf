// The seam between a call and the state a fleet shares (ClientOptions::
// shared_state). A call first asks this process's own parts (breaker,
// limiter, budget book: they decide alone when there is no fleet, and are
// what the fleet falls back to when Redis is away); when they let it go,
// one asynchronous `admit` asks the fleet for the same things together.
// The answer comes on the loop thread: go (with a lease to finish), skip
// (for a category) or wait (at most so long).
#ifndef LLMGUARD_SRC_STATE_SHARED_STATE_H_
#define LLMGUARD_SRC_STATE_SHARED_STATE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "llmguard/error.h"
#include "llmguard/options.h"

namespace llmguard::internal {

class Fleet {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  // A budget an attempt reserves on, with what this process reserved for it.
  struct Hold {
    std::size_t budget = 0;   // ClientOptions::budgets index
    std::int64_t period = 0;  // BudgetBook::period_of
    double usd = 0;
    std::int64_t tokens = 0;
  };
  struct AdmitRequest {
    std::size_t target = 0;   // ClientOptions::targets index
    std::int64_t tokens = 0;  // the attempt's estimate, for tokens_per_minute
    std::vector<Hold> holds;
    std::optional<SteadyTime> deadline;  // no Redis command outlasts it
    bool first_on_target = false;        // the call's first attempt on this target: a request
    bool retry = false;                  // a retry the call's policy chose: the retry budget may refuse it
  };
  struct Admission {
    enum class Verdict : std::uint8_t { kGo, kSkip, kWait };
    Verdict verdict = Verdict::kGo;
    // kGo: what finish() gives back; 0 when nothing was taken (Redis is
    // away and the process goes on alone).
    std::uint64_t lease = 0;
    // kSkip: why (kCircuitOpen, kBudgetExceeded; kConnection when Redis is
    // away and on_unavailable is kFail, which ends the call), or
    // retry_refused: the retry would overrun the fleet's retry budget.
    std::optional<Error> refusal;
    std::optional<std::string> retry_refused;
    // kWait: a slot or the bucket is taken; look again after this long at
    // most (a slot freed anywhere in the fleet wakes the waiting line sooner).
    std::chrono::milliseconds wait{0};
    bool slots_taken = false;
  };
  // What an attempt spent against each hold it was admitted with (same order).
  struct Spent {
    double usd = 0;
    std::int64_t tokens = 0;
  };

  virtual ~Fleet() = default;

  // Whether attempts to `target` need the fleet's word (it has limits, or
  // the call is under a budget): the others cost no round trip.
  virtual bool involved(std::size_t target, bool budgeted) const = 0;
  // Answers through `done`, on the loop thread, within the request's deadline.
  virtual void admit(AdmitRequest request, std::function<void(Admission)> done) = 0;
  // The attempt is over: its slot back, its holds replaced by `spent`.
  // Asynchronous; nothing waits for it.
  virtual void finish(std::uint64_t lease, std::vector<Spent> spent) = 0;
  // This process opened a target's breaker: every process skips it as long.
  virtual void breaker_opened(std::size_t target, ErrorCategory why, std::chrono::milliseconds open_for) = 0;
  // Client::reset_target: for the fleet.
  virtual void reset(std::size_t target) = 0;

  // For Client::metrics(): whether the shared state answers, and the work
  // it has cost so far.
  struct Stats {
    bool reachable = true;
    std::uint64_t round_trips = 0;  // each one pipeline of scripts
    std::uint64_t scripts = 0;      // admissions, settlements, renewals, breaker news
  };
  virtual Stats stats() const = 0;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_STATE_SHARED_STATE_H_
