// The state a fleet shares, kept in Redis (DESIGN.md, "Shared state across
// processes"): each operation is one Lua script, so one round trip that no
// other process can interleave with. Blocking: it runs on the shared state's
// own thread (redis_state.h), never the event loop.
//
// Keys live under "llmguard:{<namespace>}:", hash-tagged so that a
// namespace is one Redis Cluster slot:
//   breaker:<target>        a string with a TTL: the target is out until it expires
//   slots:<target>          sorted set, lease -> expiry (ms): concurrency slots in use
//   bucket:<target>         hash {req, tok, at}: the request and token allowances at `at`
//   probe:last              the last process that probed a Redis it had lost (a minute's TTL)
//   retries:<target>        hash, a ring of one-second slots {s<i>, r<i>, x<i>}: requests and
//                           retries in the retry budget's window
//   budget:<n>:<tag>:<period>:<id>        hash {spent_usd, spent_tokens, held_usd, held_tokens,
//                                         h:<lease> = "usd tokens"}
//   budget:<n>:<tag>:<period>:<id>:held   sorted set, lease -> expiry (ms)
// Leases expire: a process that dies gives its slots and reservations back
// lease_ttl later; a live one renews those of its long calls.
#ifndef LLMGUARD_SRC_STATE_REDIS_STORE_H_
#define LLMGUARD_SRC_STATE_REDIS_STORE_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmguard/error.h"
#include "llmguard/options.h"
#include "state/redis_connection.h"

namespace llmguard::internal {

class RedisStore {
 public:
  // Every `now_ms` below: 0 reads the server's clock (TIME), so that every
  // host agrees; tests pass their own.
  RedisStore(RedisConnection& redis, std::string_view ns);

  std::string key(std::string_view kind, std::string_view name) const;
  // The budget a caller tag and period share across the fleet, in period `id`.
  std::string budget_key(std::string_view caller_tag, Budget::Period period, std::int64_t id) const;
  const std::string& events_channel() const { return events_channel_; }

  // One budget an attempt reserves on: its key, its limits, the amounts.
  struct Hold {
    std::string key;
    std::optional<double> limit_usd;
    std::optional<std::int64_t> limit_tokens;
    double usd = 0;
    std::int64_t tokens = 0;
    std::chrono::seconds keep{0};  // how long the period's key outlives its last write; 0: forever (kTotal)
  };
  struct AdmitArgs {
    std::string_view target;
    std::string_view lease;
    std::chrono::milliseconds lease_ttl{10000};
    Target::Limits limits;
    std::int64_t tokens = 0;  // the attempt's estimate, for tokens_per_minute
    std::span<const Hold> holds;
    std::int64_t now_ms = 0;
    // Shared for this target: its requests and retries are counted across
    // the fleet, and a retry is refused past the budget. nullopt: not shared.
    std::optional<RetryBudget> retry_budget;
    bool first_on_target = false;  // the call's first attempt here: one request
    bool retry = false;            // a retry the call's policy chose
  };
  struct Verdict {
    enum class Kind : std::uint8_t { kGo, kBreakerOpen, kSlotsTaken, kBucketEmpty, kBudgetRefused, kRetryBudgetSpent };
    Kind kind = Kind::kGo;
    std::chrono::milliseconds wait{0};  // kBreakerOpen: left open; kSlotsTaken: until the first lease expires;
                                        // kBucketEmpty: until it refills
    std::string reason;                 // kBreakerOpen: the category that opened it
    std::size_t budget = 0;             // kBudgetRefused: which hold
    double spent_usd = 0, held_usd = 0;
    std::int64_t spent_tokens = 0, held_tokens = 0;
    std::int64_t retries = 0, requests = 0;  // kRetryBudgetSpent: the fleet's, in the window
  };
  // Checks the breaker, a concurrency slot, the buckets and every hold, and
  // takes them all, or takes nothing.
  Result<Verdict> admit(const AdmitArgs& args);

  struct Settled {
    std::string_view key;  // a Hold's
    double usd = 0;
    std::int64_t tokens = 0;
    std::chrono::seconds keep{0};  // as the Hold's
  };
  // Gives the lease's slot back and replaces its holds by what was spent
  // (spent counts even when the hold has expired: the money is gone).
  // `slot_target` empty: the lease held no slot.
  Status finish(std::string_view lease, std::string_view slot_target, std::span<const Settled> spent);

  // Pushes the expiry of these leases (their slots and holds) lease_ttl on.
  struct Renewal {
    std::vector<std::string> keys;    // slot and hold sets
    std::vector<std::string> leases;  // renewed in every one of them
  };
  Status renew(const Renewal& renewal, std::chrono::milliseconds lease_ttl, std::int64_t now_ms = 0);

  // Opens a target's breaker for every process (unless it is open longer
  // already) and tells them on the events channel; `origin` names this
  // process, so that it can ignore its own news.
  Status open_breaker(std::string_view target, std::string_view why, std::chrono::milliseconds open_for,
                      std::string_view origin);
  Status reset_target(std::string_view target, std::string_view origin);
  // Whether the server takes the fleet's commands again: one small write.
  Status probe(std::string_view origin);
  // Targets open now: name, category, time left.
  struct OpenBreaker {
    std::string target, reason;
    std::chrono::milliseconds left{0};
  };
  Result<std::vector<OpenBreaker>> open_breakers();

  // The same operations as script runs, for a caller that sends several in
  // one round trip (run_scripts), and what their replies say.
  ScriptCall admit_call(const AdmitArgs& args) const;
  ScriptCall finish_call(std::string_view lease, std::string_view slot_target, std::span<const Settled> spent) const;
  ScriptCall open_breaker_call(std::string_view target, std::string_view why, std::chrono::milliseconds open_for,
                               std::string_view origin) const;
  ScriptCall reset_call(std::string_view target, std::string_view origin) const;
  Result<Verdict> verdict_of(Result<RedisReply> admit_reply) const;
  Status status_of(Result<RedisReply> reply, std::string_view what) const;

  // The namespace as an operator sees it: budgets spent and reserved,
  // breakers, limits in use, as one JSON object.
  Result<std::string> snapshot_json(std::int64_t now_ms = 0);

 private:
  Result<std::vector<std::string>> keys_matching(std::string_view pattern);

  RedisConnection& redis_;
  std::string namespace_;
  std::string prefix_;  // "llmguard:{ns}:"
  std::string events_channel_;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_STATE_REDIS_STORE_H_
