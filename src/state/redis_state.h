// The fleet's state in Redis, behind the Fleet seam: a thread of its own
// runs the blocking commands (admissions, settlements, lease renewals) and
// answers on the transport's loop; a second one listens on the namespace's
// channel for breakers opened or reset and slots freed by other processes.
// When Redis is away, admissions answer at once (on_unavailable) without a
// round trip until a background probe finds it back.
#ifndef LLMGUARD_SRC_STATE_REDIS_STATE_H_
#define LLMGUARD_SRC_STATE_REDIS_STATE_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "llmguard/options.h"
#include "llmguard/runtime.h"
#include "state/redis_connection.h"
#include "state/redis_store.h"
#include "state/shared_state.h"

namespace llmguard::internal {

class RedisFleet final : public Fleet {
 public:
  // What the fleet tells the client, always on the loop thread.
  struct Hooks {
    std::function<void(const Event&)> event;  // kSharedStateUnavailable, kSharedStateRestored
    // Another process opened (or reset) a target's breaker.
    std::function<void(std::size_t target, ErrorCategory why, std::chrono::milliseconds left)> breaker_opened;
    std::function<void(std::size_t target)> breaker_reset;
    std::function<void()> slot_freed;  // somewhere in the fleet: the waiting line looks again
  };

  // kBadRequest for an unusable URL, namespace or TTL. Redis need not be up.
  static Result<std::unique_ptr<RedisFleet>> create(const SharedState& options, const std::vector<Target>& targets,
                                                    const std::vector<Budget>& budgets, const RetryBudget& retry_budget,
                                                    std::shared_ptr<Transport> transport, Hooks hooks);
  ~RedisFleet() override;

  bool involved(std::size_t target, bool budgeted) const override;
  void admit(AdmitRequest request, std::function<void(Admission)> done) override;
  void finish(std::uint64_t lease, std::vector<Spent> spent) override;
  void breaker_opened(std::size_t target, ErrorCategory why, std::chrono::milliseconds open_for) override;
  void reset(std::size_t target) override;

  // Breakers open in the fleet when the client was created (read then, in
  // one round trip or two), for the client to start with.
  struct OpenTarget {
    std::size_t target;
    ErrorCategory why;
    std::chrono::milliseconds left;
  };
  const std::vector<OpenTarget>& open_at_start() const { return open_at_start_; }

  Stats stats() const override;

 private:
  // What an admitted lease holds, to settle and renew it.
  struct Held {
    std::string slot_target;  // empty: no slot
    std::vector<std::string> hold_keys;
    std::vector<std::chrono::seconds> hold_keep;  // how long each budget key is kept
  };
  struct AdmitJob {
    AdmitRequest request;
    std::uint64_t lease;
    std::function<void(Admission)> done;
    Held held;  // what it takes if it goes
  };
  struct FinishJob {
    std::uint64_t lease;
    std::vector<Spent> spent;
  };
  struct BreakerJob {
    std::size_t target;
    std::string why;  // empty: reset
    std::chrono::milliseconds open_for;
  };
  using Job = std::variant<AdmitJob, FinishJob, BreakerJob>;
  // A job's part of a round trip: the script it runs (none: it was dealt
  // with without Redis) and how long its reply may take.
  struct Outgoing {
    std::optional<ScriptCall> call;
    std::chrono::milliseconds timeout{0};
  };

  RedisFleet(const SharedState& options, RedisEndpoint endpoint, const std::vector<Target>& targets,
             const std::vector<Budget>& budgets, const RetryBudget& retry_budget, std::shared_ptr<Transport> transport,
             Hooks hooks);
  void enqueue(Job job);
  void work();
  void listen();
  // The jobs queued together go out in one round trip (a pipeline).
  void run(std::vector<Job>& batch);
  Outgoing prepare(AdmitJob& job);
  Outgoing prepare(FinishJob& job);
  Outgoing prepare(BreakerJob& job);
  void complete(AdmitJob& job, Result<RedisReply> reply, std::chrono::milliseconds timeout);
  void complete(FinishJob& job, Result<RedisReply> reply, std::chrono::milliseconds timeout);
  void complete(BreakerJob& job, Result<RedisReply> reply, std::chrono::milliseconds timeout);
  // A failed round trip says Redis is away only when it had the whole command_timeout.
  void failed(const Error& error, std::chrono::milliseconds timeout);
  void renew();
  void probe();
  // Redis failed a command: say so once and answer without it until a probe finds it back.
  void went_away(const Error& error);
  Admission unavailable(const Error& error) const;
  void post(std::function<void()> fn) const;
  void on_message(std::string_view payload);
  std::optional<std::size_t> target_index(std::string_view name) const;
  std::string lease_name(std::uint64_t lease) const;

  const SharedState options_;
  std::vector<std::string> target_names_;
  std::vector<Target::Limits> limits_;
  std::vector<Budget> budgets_;
  const RetryBudget retry_budget_;
  const std::shared_ptr<Transport> transport_;
  const Hooks hooks_;
  std::string origin_;  // this process's (and client's) name in leases and on the channel
  std::atomic<std::uint64_t> next_lease_{1};
  std::atomic<std::uint64_t> round_trips_{0};
  std::atomic<std::uint64_t> scripts_{0};
  std::atomic<bool> away_{false};
  std::vector<OpenTarget> open_at_start_;

  // Worker thread only.
  RedisConnection redis_;
  RedisStore store_;
  std::map<std::uint64_t, Held> held_;
  std::chrono::steady_clock::time_point next_renewal_, next_probe_;
  std::chrono::milliseconds probe_backoff_{0};

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  bool first_subscribe_done_ = false;  // the listener's first SUBSCRIBE has been answered (or failed)
  int stop_fd_ = -1;                   // an eventfd the listener polls beside its socket

  std::thread worker_;
  std::thread listener_;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_STATE_REDIS_STATE_H_
