// Deterministic stand-ins for time, chance and I/O. FakeTransport is a
// manually driven event loop: nothing happens until the test runs it, and
// time moves only when the test advances the fake clock.
#ifndef LLMGUARD_TESTS_FAKES_H_
#define LLMGUARD_TESTS_FAKES_H_

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "llmguard/runtime.h"

namespace llmguard::testing {

class FakeClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return now_; }
  std::chrono::system_clock::time_point wall_now() const override { return wall_; }
  void advance(std::chrono::nanoseconds d) {
    now_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }
  void set_wall(std::chrono::system_clock::time_point t) { wall_ = t; }

 private:
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1000)};
  std::chrono::system_clock::time_point wall_{std::chrono::sys_days{std::chrono::year{2026} / 1 / 15}};
};

// Returns the queued values in turn, then `fallback` forever.
class FakeRandom final : public RandomSource {
 public:
  explicit FakeRandom(double fallback_unit = 0.5) : fallback_(to_u64(fallback_unit)) {}
  void push_unit(double u) { queue_.push_back(to_u64(u)); }
  std::uint64_t next_u64() override {
    if (queue_.empty()) return fallback_;
    auto v = queue_.front();
    queue_.pop_front();
    return v;
  }

 private:
  static std::uint64_t to_u64(double u) { return static_cast<std::uint64_t>(u * 0x1.0p53) << 11; }
  std::uint64_t fallback_;
  std::deque<std::uint64_t> queue_;
};

class FakeTransport final : public Transport {
 public:
  // Decides each request's fate: a response or error now, or nullopt to
  // leave it hanging until cancelled.
  using Responder = std::function<std::optional<Result<HttpResponse>>(const HttpRequest&)>;

  explicit FakeTransport(FakeClock& clock) : clock_(clock) {}
  void set_responder(Responder r) { responder_ = std::move(r); }
  // Makes hung requests time out this much before their total timeout, as a
  // real transport's clock may run slightly ahead of the engine's timers.
  void set_timeout_skew(std::chrono::milliseconds early) { timeout_skew_ = early; }

  RequestId send(HttpRequest request, HttpHandlers handlers) override {
    const RequestId id = next_id_++;
    sent_.push_back(request);
    auto outcome = responder_ ? responder_(request) : std::nullopt;
    pending_[id] = std::move(handlers);
    if (outcome) {
      // Completion arrives on a later loop turn, as over a real network.
      post([this, id, r = std::move(*outcome)]() mutable { complete(id, std::move(r)); });
    } else {
      // A hang: the attempt's own total timeout still applies.
      timeout_timers_[id] = schedule(request.total_timeout - timeout_skew_, [this, id] {
        Error e;
        e.category = ErrorCategory::kTimeout;
        e.message = "fake timeout";
        complete(id, std::move(e));
      });
    }
    return id;
  }
  void cancel(RequestId id) override {
    Error e;
    e.category = ErrorCategory::kCancelled;
    e.message = "request cancelled";
    complete(id, std::move(e));
  }
  TimerId schedule(std::chrono::nanoseconds delay, std::function<void()> fn) override {
    const TimerId id = next_id_++;
    timers_.emplace(std::make_pair(clock_.now() + delay, id), std::move(fn));
    return id;
  }
  bool cancel_timer(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second == id) {
        timers_.erase(it);
        return true;
      }
    }
    return false;
  }
  bool in_loop_thread() const override { return in_loop_; }

  // Runs every timer due now (posts included), repeatedly, until none is.
  void run_until_idle() {
    in_loop_ = true;
    for (;;) {
      auto it = timers_.begin();
      if (it == timers_.end() || it->first.first > clock_.now()) break;
      auto fn = std::move(it->second);
      timers_.erase(it);
      ++timers_fired_;
      fn();
    }
    in_loop_ = false;
  }
  // Advances the clock to each due timer in turn, up to `limit` from now,
  // stopping early (without moving time further) once `done()` holds.
  void run_for(std::chrono::nanoseconds limit, const std::function<bool()>& done = nullptr) {
    const auto end = clock_.now() + limit;
    run_until_idle();
    while (!(done && done()) && !timers_.empty() && timers_.begin()->first.first <= end) {
      const auto due = timers_.begin()->first.first;
      if (due > clock_.now()) clock_.advance(due - clock_.now());
      run_until_idle();
    }
    if (!(done && done()) && end > clock_.now()) clock_.advance(end - clock_.now());
  }

  const std::vector<HttpRequest>& sent() const { return sent_; }
  // Timers and posts run so far: a waiting call that polls shows here.
  std::size_t timers_fired() const { return timers_fired_; }
  std::size_t pending_requests() const { return pending_.size(); }

 private:
  void complete(RequestId id, Result<HttpResponse> result) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    auto handlers = std::move(it->second);
    pending_.erase(it);
    if (auto t = timeout_timers_.find(id); t != timeout_timers_.end()) {
      cancel_timer(t->second);
      timeout_timers_.erase(t);
    }
    const bool was_in_loop = in_loop_;
    in_loop_ = true;
    handlers.on_complete(std::move(result));
    in_loop_ = was_in_loop;
  }

  FakeClock& clock_;
  Responder responder_;
  std::chrono::milliseconds timeout_skew_{0};
  RequestId next_id_ = 1;
  bool in_loop_ = false;
  std::vector<HttpRequest> sent_;
  std::map<RequestId, HttpHandlers> pending_;
  std::size_t timers_fired_ = 0;
  std::map<RequestId, TimerId> timeout_timers_;
  std::map<std::pair<std::chrono::steady_clock::time_point, TimerId>, std::function<void()>> timers_;
};

inline HttpResponse http(int status, std::string body, Headers headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

}  // namespace llmguard::testing

#endif  // LLMGUARD_TESTS_FAKES_H_
