#include "limit_queue.h"

#include <algorithm>
#include <utility>

namespace llmguard::internal {

void LimitQueue::park(const std::string& tag, std::weak_ptr<Waiter> waiter, std::uint64_t arrival) {
  auto& queue = by_tag_[tag];
  const auto later = std::find_if(queue.begin(), queue.end(), [&](const InLine& w) { return w.arrival > arrival; });
  queue.insert(later, InLine{arrival, std::move(waiter)});
  // A waiter parked again while serve() or decided() runs has its tag's turn put back first by them.
  if (std::find(turn_.begin(), turn_.end(), tag) == turn_.end()) turn_.push_back(tag);
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

void LimitQueue::decided(const std::string& tag, bool went) {
  if (!deciding_tag_ || *deciding_tag_ != tag) return;
  deciding_tag_.reset();
  deciding_.reset();
  const bool again = std::exchange(serve_again_, false);
  if (went) {
    pass_turn(tag);
    wake();
    return;
  }
  take_turn_back(tag);
  if (again) wake();  // a slot freed or a bucket refilled while it asked
}

void LimitQueue::take_turn_back(const std::string& tag) {
  turn_.erase(std::remove(turn_.begin(), turn_.end(), tag), turn_.end());
  turn_.push_front(tag);
}

void LimitQueue::pass_turn(const std::string& tag) {
  auto found = by_tag_.find(tag);
  if (found == by_tag_.end()) return;
  if (found->second.empty()) {
    by_tag_.erase(found);
    turn_.erase(std::remove(turn_.begin(), turn_.end(), tag), turn_.end());
    return;
  }
  if (std::find(turn_.begin(), turn_.end(), tag) == turn_.end()) turn_.push_back(tag);
}

void LimitQueue::serve() {
  if (deciding_tag_) {
    const auto waiter = deciding_.lock();
    if (waiter && waiter->deciding()) {
      serve_again_ = true;
      return;
    }
    // Gone without a word (finished meanwhile): as if it went.
    const std::string tag = std::move(*deciding_tag_);
    deciding_tag_.reset();
    serve_again_ = false;
    pass_turn(tag);
  }
  // One waiter per tag in turn, until one finds every target still limited
  // (then that tag keeps its turn, and a timer or a freed slot wakes the
  // line) or has to wait for an answer (then the line waits for it too).
  while (!turn_.empty()) {
    const std::string tag = turn_.front();
    turn_.pop_front();
    auto found = by_tag_.find(tag);
    if (found == by_tag_.end()) continue;
    auto& queue = found->second;
    std::shared_ptr<Waiter> waiter;
    while (!queue.empty() && !waiter) {
      waiter = queue.front().waiter.lock();
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
      take_turn_back(tag);
      return;
    }
    if (waiter->deciding()) {
      deciding_tag_ = tag;
      deciding_ = waiter;
      return;
    }
    // `queue` may have been touched by resume (other waiters parked).
    pass_turn(tag);
  }
}

}  // namespace llmguard::internal
