#include "limit_queue.h"

#include <algorithm>

namespace llmguard::internal {

void LimitQueue::park(const std::string& tag, std::weak_ptr<Waiter> waiter, bool front) {
  auto& queue = by_tag_[tag];
  const bool tag_waiting = !queue.empty() || std::find(turn_.begin(), turn_.end(), tag) != turn_.end();
  if (front) {
    queue.push_front(std::move(waiter));
  } else {
    queue.push_back(std::move(waiter));
  }
  // A resumed waiter's tag is put back in turn by serve().
  if (!tag_waiting && !front) turn_.push_back(tag);
}

void LimitQueue::arm(SteadyTime due) {
  if (timer_due_ && *timer_due_ <= due) return;
  if (timer_) transport_->cancel_timer(*timer_);
  timer_due_ = due;
  const auto delay =
      std::max(std::chrono::milliseconds(0), std::chrono::ceil<std::chrono::milliseconds>(due - clock_.now()));
  timer_ = transport_->schedule(delay, [weak = weak_from_this()] {
    auto line = weak.lock();
    if (!line) return;
    line->timer_.reset();
    line->timer_due_.reset();
    line->serve();
  });
}

void LimitQueue::wake() {
  if (turn_.empty() || serve_posted_) return;
  serve_posted_ = true;
  transport_->post([weak = weak_from_this()] {
    auto line = weak.lock();
    if (!line) return;
    line->serve_posted_ = false;
    line->serve();
  });
}

void LimitQueue::serve() {
  // One waiter per tag in turn, until one finds every target still limited:
  // then that tag keeps its turn, and a timer or a freed slot wakes the line.
  while (!turn_.empty()) {
    const std::string tag = turn_.front();
    turn_.pop_front();
    auto found = by_tag_.find(tag);
    if (found == by_tag_.end()) continue;
    auto& queue = found->second;
    std::shared_ptr<Waiter> waiter;
    while (!queue.empty() && !waiter) {
      waiter = queue.front().lock();
      queue.pop_front();
      if (waiter && !waiter->still_waiting()) waiter.reset();
    }
    if (!waiter) {
      by_tag_.erase(found);
      continue;
    }
    waiter->resume();
    if (waiter->still_waiting()) {
      // Parked again at the front of its line: this tag is next once more.
      turn_.push_front(tag);
      return;
    }
    // `queue` may have been touched by resume (other waiters parked).
    auto again = by_tag_.find(tag);
    if (again == by_tag_.end()) continue;
    if (again->second.empty()) {
      by_tag_.erase(again);
    } else {
      turn_.push_back(tag);
    }
  }
}

}  // namespace llmguard::internal
