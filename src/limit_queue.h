// The line of calls waiting for a target's client-side limits (concurrency
// slots, request and token buckets), served fairly: in turn by caller tag, so
// that one tag's burst cannot starve another's calls, and in order within a
// tag. Woken when a slot frees (wake) or when a bucket will have refilled
// (arm); it never polls. A waiter whose answer comes later (the fleet's
// admission is a round trip to Redis) holds the line until it says how it
// went, so the calls behind it neither overtake it nor all ask at once.
// Event-loop thread only, like the calls in it.
#ifndef LLMGUARD_SRC_LIMIT_QUEUE_H_
#define LLMGUARD_SRC_LIMIT_QUEUE_H_

#include <chrono>
#include <cstdint>
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
    // After resume(): gone on, but not yet knowing whether it may go (an
    // answer is on its way). It must then call decided() exactly once.
    virtual bool deciding() const { return false; }
  };

  // The transport's timers and posts drive the line; they hold it weakly, so
  // one still queued after the client is gone finds it expired.
  LimitQueue(std::shared_ptr<Transport> transport, const Clock& clock)
      : transport_(std::move(transport)), clock_(clock) {}

  // Puts `waiter` in `tag`'s line in the order of `arrival` (the call's
  // number): a waiter resumed that must wait again keeps its place, and so
  // does one that was still asking the fleet when later calls parked.
  void park(const std::string& tag, std::weak_ptr<Waiter> waiter, std::uint64_t arrival);
  // Serves the line at `due` (a bucket refills then), unless it is armed
  // for an earlier time already.
  void arm(SteadyTime due);
  // Serves the line soon, after whatever runs now (a slot was freed).
  void wake();
  // The deciding waiter of `tag` knows now: it went (the line serves on), or
  // it parked again (in its place, by arrival), and the line waits for a slot or a refill as if it had never moved.
  void decided(const std::string& tag, bool went);
  bool empty() const { return turn_.empty(); }

 private:
  void serve();
  void take_turn_back(const std::string& tag);  // `tag` is next to serve
  void pass_turn(const std::string& tag);       // `tag` goes to the back, if it still waits

  std::shared_ptr<Transport> transport_;
  const Clock& clock_;
  struct InLine {
    std::uint64_t arrival;
    std::weak_ptr<Waiter> waiter;
  };
  std::map<std::string, std::deque<InLine>> by_tag_;
  std::deque<std::string> turn_;  // tags with waiting calls, next to serve first
  std::optional<Transport::TimerId> timer_;
  std::optional<SteadyTime> timer_due_;
  bool serve_posted_ = false;
  // The waiter resumed last, while its answer is on its way; a wake or a
  // timer meanwhile is remembered and served once it has decided.
  std::optional<std::string> deciding_tag_;
  std::weak_ptr<Waiter> deciding_;
  bool serve_again_ = false;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_LIMIT_QUEUE_H_
