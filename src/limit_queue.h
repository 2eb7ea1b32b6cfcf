// The line of calls waiting for a target's client-side limits (concurrency
// slots, request and token buckets), served fairly: in turn by caller tag, so
// that one tag's burst cannot starve another's calls, and in order within a
// tag. Woken when a slot frees (wake) or when a bucket will have refilled
// (arm); it never polls. Event-loop thread only, like the calls in it.
#ifndef LLMGUARD_SRC_LIMIT_QUEUE_H_
#define LLMGUARD_SRC_LIMIT_QUEUE_H_

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "llmguard/runtime.h"

namespace llmguard::internal {

class LimitQueue : public std::enable_shared_from_this<LimitQueue> {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  // What waits in line. `resume` runs when it is its turn: it either goes on
  // (sends, fails, finishes) or parks again with `park(..., front = true)`.
  class Waiter {
   public:
    virtual ~Waiter() = default;
    virtual bool still_waiting() const = 0;
    virtual void resume() = 0;
  };

  // The transport's timers and posts drive the line; they hold it weakly, so
  // one still queued after the client is gone finds it expired.
  LimitQueue(std::shared_ptr<Transport> transport, const Clock& clock)
      : transport_(std::move(transport)), clock_(clock) {}

  // Puts `waiter` in `tag`'s line: at its back, or, for a waiter that was
  // just resumed and must wait again, at the front (it keeps its place).
  void park(const std::string& tag, std::weak_ptr<Waiter> waiter, bool front);
  // Serves the line at `due` (a bucket refills then), unless it is armed
  // for an earlier time already.
  void arm(SteadyTime due);
  // Serves the line soon, after whatever runs now (a slot was freed).
  void wake();
  bool empty() const { return turn_.empty(); }

 private:
  void serve();

  std::shared_ptr<Transport> transport_;
  const Clock& clock_;
  std::map<std::string, std::deque<std::weak_ptr<Waiter>>> by_tag_;
  std::deque<std::string> turn_;  // tags with waiting calls, next to serve first
  std::optional<Transport::TimerId> timer_;
  std::optional<SteadyTime> timer_due_;
  bool serve_posted_ = false;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_LIMIT_QUEUE_H_
