// The fair line of calls waiting for client-side limits, with fake time and a
// fake transport: who is served in which order, when the line wakes, and
// that a waiter that is gone or done is passed over.
#include "limit_queue.h"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fakes.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;
using testing::FakeTransport;

// A waiter that records its turn; `parks_again` times it finds the target
// still limited and parks again. One that `asks` goes on to wait for an
// answer (as a call asking the fleet does), told later by answer().
struct Waiter : LimitQueue::Waiter {
  std::string name, tag;
  std::uint64_t arrival = 0;
  std::vector<std::string>* served;
  LimitQueue* queue;
  int parks_again = 0;
  bool asks = false;
  bool waiting = true;
  bool asking = false;

  bool still_waiting() const override { return waiting; }
  bool deciding() const override { return asking; }
  void resume() override {
    served->push_back(name);
    waiting = false;
    if (asks) {
      asking = true;
      return;
    }
    if (parks_again > 0) {
      --parks_again;
      waiting = true;
      queue->park(tag, weak_self, arrival);
    }
  }
  void answer(bool go) {
    asking = false;
    if (!go) {
      waiting = true;
      queue->park(tag, weak_self, arrival);
    }
    queue->decided(tag, go);
  }
  std::weak_ptr<Waiter> weak_self;
};

struct Line {
  FakeClock clock;
  std::shared_ptr<FakeTransport> transport = std::make_shared<FakeTransport>(clock);
  std::shared_ptr<LimitQueue> queue = std::make_shared<LimitQueue>(transport, clock);
  std::vector<std::string> served;
  std::vector<std::shared_ptr<Waiter>> waiters;
  std::uint64_t arrivals = 0;

  std::shared_ptr<Waiter> add(std::string name, std::string tag, int parks_again = 0,
                              std::optional<std::uint64_t> arrival = std::nullopt) {
    auto w = std::make_shared<Waiter>();
    w->name = std::move(name);
    w->tag = std::move(tag);
    w->arrival = arrival ? *arrival : ++arrivals;
    w->served = &served;
    w->queue = queue.get();
    w->parks_again = parks_again;
    w->weak_self = w;
    queue->park(w->tag, w, w->arrival);
    waiters.push_back(w);
    return w;
  }
};

TEST_CASE("Tags take turns; within a tag, first come first served") {
  Line l;
  l.add("bulk-1", "bulk");
  l.add("bulk-2", "bulk");
  l.add("bulk-3", "bulk");
  l.add("user-1", "user");
  l.add("user-2", "user");
  l.queue->wake();
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"bulk-1", "user-1", "bulk-2", "user-2", "bulk-3"});
  CHECK(l.queue->empty());
}

TEST_CASE("A waiter that must wait again keeps the head of the line, and the others wait behind it") {
  Line l;
  l.add("a-1", "a", /*parks_again=*/1);
  l.add("b-1", "b");
  l.queue->wake();
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"a-1"});  // still limited: nobody else goes
  l.queue->wake();                                     // a slot frees
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"a-1", "a-1", "b-1"});
}

TEST_CASE("Within a tag the line keeps arrival order, whenever each call parked") {
  Line l;
  l.add("bulk-2", "bulk");
  l.add("bulk-3", "bulk");
  l.add("user-1", "user");
  l.add("bulk-1", "bulk", 0, /*arrival=*/0);  // came first, parked last (it was asking the fleet)
  l.queue->wake();
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"bulk-1", "user-1", "bulk-2", "bulk-3"});
}

TEST_CASE("A waiter asking for an answer holds the line; a wake meanwhile is served once it went") {
  Line l;
  auto asking = l.add("a-1", "a");
  asking->asks = true;
  l.add("b-1", "b");
  l.add("a-2", "a");
  l.queue->wake();
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"a-1"});  // nobody overtakes it, nobody asks beside it
  l.queue->wake();                                     // a slot frees meanwhile
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"a-1"});
  asking->answer(/*go=*/true);
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"a-1", "b-1", "a-2"});
  CHECK(l.queue->empty());
}

TEST_CASE("A waiter told to wait keeps its turn and its place; the line waits for the next wake") {
  Line l;
  auto asking = l.add("a-1", "a");
  asking->asks = true;
  l.add("b-1", "b");
  l.queue->wake();
  l.transport->run_until_idle();
  asking->answer(/*go=*/false);
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"a-1"});  // no wake came: nothing is asked again
  asking->asks = false;
  l.queue->wake();
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"a-1", "a-1", "b-1"});

  // A wake while it asked, then a "wait": the line is served again at once.
  Line m;
  auto again = m.add("a-1", "a");
  again->asks = true;
  m.add("b-1", "b");
  m.queue->wake();
  m.transport->run_until_idle();
  m.queue->wake();
  m.transport->run_until_idle();
  again->asks = false;
  again->answer(/*go=*/false);
  m.transport->run_until_idle();
  CHECK(m.served == std::vector<std::string>{"a-1", "a-1", "b-1"});
}

TEST_CASE("A waiter that ends while asking, without a word, does not hold the line for good") {
  Line l;
  auto asking = l.add("a-1", "a");
  asking->asks = true;
  l.add("b-1", "b");
  l.queue->wake();
  l.transport->run_until_idle();
  l.waiters.erase(l.waiters.begin());  // destroyed while its answer was on its way
  asking.reset();
  l.queue->wake();
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"a-1", "b-1"});
}

TEST_CASE("Gone and finished waiters are passed over") {
  Line l;
  l.add("gone", "t");
  auto done = l.add("done", "t");
  l.add("next", "t");
  l.waiters.erase(l.waiters.begin());  // the call was destroyed
  done->waiting = false;               // finished (cancelled, say) while in line
  l.queue->wake();
  l.transport->run_until_idle();
  CHECK(l.served == std::vector<std::string>{"next"});
}

TEST_CASE("arm serves the line at the earliest time asked, never earlier; wake posts at most once") {
  Line l;
  l.add("w", "t");
  const auto start = l.clock.now();
  l.queue->arm(start + milliseconds(500));
  l.queue->arm(start + milliseconds(200));  // earlier: replaces the timer
  l.queue->arm(start + milliseconds(900));  // later: ignored
  l.transport->run_for(milliseconds(199));
  CHECK(l.served.empty());
  l.transport->run_for(milliseconds(1));
  CHECK(l.served == std::vector<std::string>{"w"});
  const auto fired = l.transport->timers_fired();
  l.transport->run_for(milliseconds(2000));
  CHECK(l.transport->timers_fired() == fired);  // the replaced timers never fire
  l.add("x", "t");
  l.queue->wake();
  l.queue->wake();
  l.transport->run_until_idle();
  CHECK(l.transport->timers_fired() == fired + 1);
}

TEST_CASE("A timer still queued after the line is gone does nothing") {
  FakeClock clock;
  auto transport = std::make_shared<FakeTransport>(clock);
  auto queue = std::make_shared<LimitQueue>(transport, clock);
  queue->arm(clock.now() + milliseconds(10));
  queue->wake();
  queue.reset();
  transport->run_for(milliseconds(100));
  CHECK(transport->timers_fired() >= 1);  // fired into an expired line, harmlessly
}

}  // namespace
}  // namespace llmguard::internal
