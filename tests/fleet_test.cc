// Clients sharing budgets, limits and breakers through a real redis-server,
// calling the mock over real HTTP: several clients in this process stand
// for a fleet's processes (each has its own state, its own Redis
// connections); fleet_cli_test runs real separate processes.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "eventually.h"
#include "llmguard/client.h"
#include "mock_server.h"
#include "redis_server.h"
#include "state/redis_connection.h"

namespace llmguard {
namespace {

using std::chrono::milliseconds;
using testing::eventually;
using testing::RedisServer;

const Price kPrice{.input_per_mtok = 1000.0, .output_per_mtok = 2000.0};

ChatRequest ask(std::string text, std::string tag = "") {
  ChatRequest r;
  r.messages.push_back(Message::user(std::move(text)));
  r.caller_tag = std::move(tag);
  r.max_tokens = 20;
  return r;
}

SharedState shared(const RedisServer& redis, std::string ns = "test") {
  return {.redis_url = redis.url(), .name_space = std::move(ns)};
}

std::string joined(const std::vector<std::string>& order) {
  std::string out;
  for (const auto& o : order) out += o + " ";
  return out;
}

struct Events {
  std::mutex mu;
  std::vector<std::pair<Event::Kind, std::string>> seen;
  std::function<void(const Event&)> sink() {
    return [this](const Event& e) {
      std::lock_guard lock(mu);
      seen.emplace_back(e.kind, std::string(e.message));
    };
  }
  int count(Event::Kind kind) {
    std::lock_guard lock(mu);
    return static_cast<int>(std::count_if(seen.begin(), seen.end(), [&](const auto& e) { return e.first == kind; }));
  }
  std::string first(Event::Kind kind) { return nth(kind, 0); }
  std::string nth(Event::Kind kind, int n) {
    std::lock_guard lock(mu);
    for (const auto& e : seen) {
      if (e.first == kind && n-- == 0) return e.second;
    }
    return {};
  }
};

TEST_CASE("Four clients share two concurrency slots: the upstream never sees three at once") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  auto server = std::move(mock::MockServer::start({}).value());
  for (int i = 0; i < 64; ++i) server->enqueue("*", {.delay = milliseconds(20)});
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < 4; ++c) {
    ClientOptions o;
    o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .limits = {.max_concurrency = 2}}};
    o.shared_state = shared(*redis);
    o.deadline = milliseconds(30'000);
    clients.push_back(std::move(Client::create(std::move(o)).value()));
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 4; ++c) {
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, c] {
        for (int i = 0; i < 4; ++i) ok += clients[c]->guarded_chat(ask("hi")).ok();
      });
    }
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 64);
  CHECK(server->stats().requests == 64);
  CHECK(server->stats().max_in_flight <= 2);  // each client alone would allow 2, so 8 together
}

TEST_CASE("Four clients under one USD budget: together they never spend past it") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  auto server = std::move(mock::MockServer::start({}).value());
  const double budget = 2.0;  // about $0.03 settled per call: some 60 calls
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < 4; ++c) {
    ClientOptions o;
    o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = kPrice}};
    o.budgets = {Budget{.usd = budget}};
    o.shared_state = shared(*redis);
    clients.push_back(std::move(Client::create(std::move(o)).value()));
  }
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::atomic<std::int64_t> cost_micros{0};
  std::string refusal;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int c = 0; c < 4; ++c) {
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, c, t] {
        for (int i = 0; i < 30; ++i) {
          auto r = clients[c]->guarded_chat(ask("client " + std::to_string(c) + " thread " + std::to_string(t)));
          if (r.ok()) {
            ++ok;
            cost_micros += static_cast<std::int64_t>(*r->cost_usd * 1e6 + 0.5);
          } else if (r.error().category == ErrorCategory::kBudgetExceeded) {
            ++refused;
            std::lock_guard lock(mu);
            refusal = r.error().message;
          } else {
            ++other;
          }
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  MESSAGE("ok=", ok.load(), " refused=", refused.load(), " spent=$", cost_micros.load() / 1e6);
  CHECK(other == 0);
  CHECK(refused > 0);
  CHECK(ok > 10);
  CHECK(cost_micros.load() / 1e6 <= budget + 1e-6);  // what the provider billed, across all four
  CHECK(refusal.find("fleet") != std::string::npos);
  // Each client alone would have let ~60 through: together they are held to one budget.
  double local_spent = 0;
  for (auto& c : clients) local_spent += c->budgets().at(0).spent_usd;
  CHECK(local_spent == doctest::Approx(cost_micros.load() / 1e6).epsilon(1e-3));
}

TEST_CASE("Three clients share one requests-per-minute bucket; another namespace has its own") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  auto server = std::move(mock::MockServer::start({}).value());
  auto make = [&](std::string ns) {
    ClientOptions o;
    o.targets = {
        {.name = "a", .base_url = server->base_url(), .model = "gpt-a", .limits = {.requests_per_minute = 12}}};
    o.shared_state = shared(*redis, std::move(ns));
    o.deadline = milliseconds(2000);  // the next request is 5 s away: past every call's deadline
    return std::move(Client::create(std::move(o)).value());
  };
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < 3; ++c) clients.push_back(make("test"));
  int ok = 0, limited = 0;
  for (int i = 0; i < 10; ++i) {
    for (auto& c : clients) {
      auto r = c->guarded_chat(ask("hi"));
      if (r.ok()) ++ok;
      else if (r.error().category == ErrorCategory::kRateLimit) ++limited;
    }
  }
  CHECK(ok == 12);  // a minute's allowance for the fleet, not for each
  CHECK(limited == 18);
  CHECK(server->stats().requests == 12);

  // The same target name in another namespace: another fleet, its own minute.
  auto elsewhere = make("other-fleet");
  int other_ok = 0;
  for (int i = 0; i < 14; ++i) other_ok += elsewhere->guarded_chat(ask("hi")).ok() ? 1 : 0;
  CHECK(other_ok == 12);
  CHECK(server->stats().requests == 24);
}

TEST_CASE("A target one client finds with a bad key is skipped by the others") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  auto server = std::move(mock::MockServer::start({.require_key = "good-key-0123456789"}).value());
  auto make = [&](Events& events) {
    ClientOptions o;
    o.targets = {
        {.name = "primary", .base_url = server->base_url(), .model = "gpt-p", .api_key = "revoked-key-000000"},
        {.name = "backup", .base_url = server->base_url(), .model = "gpt-b", .api_key = "good-key-0123456789"}};
    o.shared_state = shared(*redis);
    o.on_event = events.sink();
    return std::move(Client::create(std::move(o)).value());
  };
  Events first_events, second_events;
  auto first = make(first_events);
  auto second = make(second_events);
  auto r = first->guarded_chat(ask("hi"));
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  CHECK(server->stats().by_model["gpt-p"] == 1);
  // The news travels on the channel: the second client has it once it arrives.
  REQUIRE(eventually([&] { return second->health().at(0).state == TargetHealth::State::kOpen; }));
  CHECK(second->health().at(0).opened_by == ErrorCategory::kAuth);
  auto r2 = second->guarded_chat(ask("hi"));
  REQUIRE(r2.ok());
  CHECK(r2->target == "backup");
  CHECK(server->stats().by_model["gpt-p"] == 1);  // never asked again
  CHECK(r2->attempts.at(0).skipped == ErrorCategory::kCircuitOpen);

  // A client started afterwards knows it from the start.
  Events third_events;
  auto third = make(third_events);
  CHECK(third->health().at(0).state == TargetHealth::State::kOpen);

  // reset_target is fleet-wide.
  second->reset_target("primary");
  REQUIRE(eventually([&] { return first->health().at(0).state == TargetHealth::State::kClosed; }));
  REQUIRE(eventually([&] { return third->health().at(0).state == TargetHealth::State::kClosed; }));
}

TEST_CASE("The retry budget of a target with limits is the fleet's: one client's retries leave less to the others") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  auto server = std::move(mock::MockServer::start({}).value());
  for (int i = 0; i < 6; ++i) server->enqueue("gpt-a", mock::MockReply{.status = 503});
  auto make = [&](Events& events) {
    ClientOptions o;
    o.targets = {
        {.name = "a", .base_url = server->base_url(), .model = "gpt-a", .limits = {.requests_per_minute = 1e5}},
        {.name = "b", .base_url = server->base_url(), .model = "gpt-b"}};
    o.retry = {.max_attempts = 3, .base_delay = milliseconds(0), .max_delay = milliseconds(0)};
    // Each process alone would allow two retries; the fleet allows two in all.
    o.retry_budget = {.ratio = 0, .min_retries = 2};
    o.breaker = {.failure_threshold = 0};
    o.shared_state = shared(*redis);
    o.on_event = events.sink();
    return std::move(Client::create(std::move(o)).value());
  };
  Events first_events, second_events;
  auto first = make(first_events);
  auto second = make(second_events);
  auto r = first->guarded_chat(ask("hi"));
  REQUIRE(r.ok());
  CHECK(r->target == "b");
  CHECK(server->stats().by_model["gpt-a"] == 3);  // the first try and two retries
  CHECK(first_events.count(Event::Kind::kRetryBudgetExhausted) == 0);

  auto r2 = second->guarded_chat(ask("hi"));
  REQUIRE(r2.ok());
  CHECK(r2->target == "b");
  CHECK(server->stats().by_model["gpt-a"] == 4);  // its own budget said yes, the fleet's no
  CHECK(second_events.count(Event::Kind::kRetryBudgetExhausted) == 1);
  CHECK(second_events.first(Event::Kind::kRetryBudgetExhausted).find("fleet's retry budget") != std::string::npos);
  REQUIRE(r2->attempts.size() >= 2);
  CHECK(r2->attempts.at(0).next == NextStep::kNextTarget);
  CHECK(r2->attempts.at(0).reason == StepReason::kRetryBudget);
}

TEST_CASE("A long call's slot is renewed past the lease TTL; another client cannot take it meanwhile") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  auto server = std::move(mock::MockServer::start({}).value());
  auto make = [&](milliseconds deadline) {
    ClientOptions o;
    o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .limits = {.max_concurrency = 1}}};
    SharedState s = shared(*redis);
    s.lease_ttl = milliseconds(150);
    o.shared_state = s;
    o.deadline = deadline;
    return std::move(Client::create(std::move(o)).value());
  };
  auto holder = make(milliseconds(10'000));
  auto other = make(milliseconds(500));
  server->enqueue("*", {.delay = milliseconds(900)});  // six TTLs
  std::thread long_call([&] { CHECK(holder->guarded_chat(ask("slow")).ok()); });
  REQUIRE(eventually([&] { return server->stats().in_flight == 1; }));
  auto r = other->guarded_chat(ask("fast"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kTimeout);  // its deadline passed, waiting for the slot
  CHECK(r.error().attempts.at(0).skipped == ErrorCategory::kRateLimit);
  CHECK(server->stats().requests == 1);
  long_call.join();
  CHECK(other->guarded_chat(ask("now")).ok());  // given back when the call ended, not left to expire
}

TEST_CASE("Calls waiting for the fleet's slot are served in turn by caller tag, not in arrival order") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  // The holder's target and the waiters' have the same name, so one fleet
  // slot, but different upstreams: the holder's answer can be held back
  // until every waiter is in line, whatever the timing.
  auto holder_upstream = std::move(mock::MockServer::start({}).value());
  auto upstream = std::move(mock::MockServer::start({}).value());
  auto make = [&](const mock::MockServer& to) {
    ClientOptions o;
    o.targets = {{.name = "a", .base_url = to.base_url(), .model = "gpt-a", .limits = {.max_concurrency = 1}}};
    o.shared_state = shared(*redis);
    o.deadline = milliseconds(20'000);
    return o;
  };
  auto holder = std::move(Client::create(make(*holder_upstream)).value());
  Events events;
  ClientOptions waiting_options = make(*upstream);
  waiting_options.on_event = events.sink();
  auto waiting = std::move(Client::create(std::move(waiting_options)).value());

  holder_upstream->hold_until_concurrent(2);
  std::thread held([&] { CHECK(holder->guarded_chat(ask("holding")).ok()); });
  REQUIRE(eventually([&] { return holder_upstream->stats().in_flight == 1; }));

  std::atomic<int> done{0};
  auto submit = [&](std::string text, std::string tag) {
    waiting->guarded_chat_async(ask(std::move(text), std::move(tag)), {}, [&](Result<ChatResponse> r) {
      CHECK(r.ok());
      ++done;
    });
  };
  submit("bulk-1", "bulk");
  submit("bulk-2", "bulk");
  submit("bulk-3", "bulk");
  submit("interactive-1", "interactive");
  REQUIRE(eventually([&] { return events.count(Event::Kind::kTargetSkipped) == 4; }));  // all four in line
  CHECK(upstream->stats().requests == 0);
  auto scripts_run = [&] {
    const std::string text = waiting->metrics();
    const auto at = text.find("\nllmguard_shared_state_scripts_total ");
    return std::stol(text.substr(at + std::string_view("\nllmguard_shared_state_scripts_total ").size()));
  };
  // Parked, they wait for the fleet's word: no round trips meanwhile (a line
  // woken by its own calls' refusals asked Redis ~10,000 times a second).
  const long scripts_parked = scripts_run();
  std::this_thread::sleep_for(milliseconds(100));
  CHECK(scripts_run() - scripts_parked <= 1);

  // A second request to the holder's upstream lets both answers go.
  auto bystander = std::move(
      Client::create({.targets = {{.name = "b", .base_url = holder_upstream->base_url(), .model = "gpt-a"}}}).value());
  CHECK(bystander->guarded_chat(ask("release")).ok());
  held.join();
  REQUIRE(eventually([&] { return done == 4; }));

  std::vector<std::string> order;
  for (const auto& request : upstream->recent_requests()) {
    for (const char* text : {"bulk-1", "bulk-2", "bulk-3", "interactive-1"}) {
      if (request.body.find(text) != std::string::npos) order.emplace_back(text);
    }
  }
  INFO(joined(order));
  // In arrival order the interactive call would be last, behind the burst.
  CHECK(order == std::vector<std::string>{"bulk-1", "interactive-1", "bulk-2", "bulk-3"});
  CHECK(upstream->stats().max_in_flight == 1);
}

TEST_CASE("Redis away: local mode goes on alone and says so; fail mode ends calls naming Redis") {
  auto redis = RedisServer::start({.password = "redis-secret-pass-42"});
  REQUIRE(redis);
  const std::string url = "redis://:redis-secret-pass-42@127.0.0.1:" + std::to_string(redis->port()) + "/0";
  redis->stop();
  auto server = std::move(mock::MockServer::start({}).value());
  auto make = [&](SharedState::OnUnavailable mode, Events& events) {
    ClientOptions o;
    o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .limits = {.max_concurrency = 4}}};
    o.shared_state = SharedState{.redis_url = url, .on_unavailable = mode};
    o.on_event = events.sink();
    return std::move(Client::create(std::move(o)).value());
  };
  Events local_events;
  auto local = make(SharedState::OnUnavailable::kLocal, local_events);
  for (int i = 0; i < 5; ++i) CHECK(local->guarded_chat(ask("hi")).ok());
  CHECK(local_events.count(Event::Kind::kSharedStateUnavailable) == 1);  // said once, not per call
  const std::string said = local_events.first(Event::Kind::kSharedStateUnavailable);
  CHECK(said.find("redis redis://127.0.0.1:") != std::string::npos);
  CHECK(said.find("redis-secret-pass-42") == std::string::npos);
  const std::string metrics = local->metrics();
  CHECK(metrics.find("\nllmguard_shared_state_up 0\n") != std::string::npos);
  CHECK(metrics.find("redis-secret-pass-42") == std::string::npos);

  Events fail_events;
  auto failing = make(SharedState::OnUnavailable::kFail, fail_events);
  auto r = failing->guarded_chat(ask("hi"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kConnection);
  CHECK(r.error().message.find("redis") != std::string::npos);
  CHECK(r.error().message.find("redis-secret-pass-42") == std::string::npos);
  CHECK(server->stats().requests == 5);  // the failing client sent nothing

  // Redis comes back: both see it (a background probe), and the fleet is used again.
  REQUIRE(redis->restart({.password = "redis-secret-pass-42"}));
  REQUIRE(eventually([&] { return local_events.count(Event::Kind::kSharedStateRestored) == 1; }));
  REQUIRE(eventually([&] { return fail_events.count(Event::Kind::kSharedStateRestored) == 1; }));
  CHECK(failing->guarded_chat(ask("hi")).ok());
}

TEST_CASE(
    "Redis answering errors (out of memory, a read-only replica): local goes on and says so once; fail names it") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  auto server = std::move(mock::MockServer::start({}).value());
  auto make = [&](SharedState::OnUnavailable mode, Events& events) {
    ClientOptions o;
    o.targets = {
        {.name = "a", .base_url = server->base_url(), .model = "gpt-a", .limits = {.requests_per_minute = 1000}}};
    o.shared_state = shared(*redis);
    o.shared_state->on_unavailable = mode;
    o.on_event = events.sink();
    return std::move(Client::create(std::move(o)).value());
  };
  Events local_events, fail_events;
  auto local = make(SharedState::OnUnavailable::kLocal, local_events);
  auto failing = make(SharedState::OnUnavailable::kFail, fail_events);
  CHECK(local->guarded_chat(ask("before")).ok());
  CHECK(failing->guarded_chat(ask("before")).ok());
  internal::RedisConnection admin(*internal::parse_redis_url(redis->url()), milliseconds(2000));
  auto set = [&](std::initializer_list<std::string_view> command) {
    auto r = admin.command(command);
    REQUIRE(r.ok());
    REQUIRE_FALSE(r->is_error());
  };

  set({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
  set({"CONFIG", "SET", "maxmemory", "1"});
  for (int i = 0; i < 4; ++i) CHECK(local->guarded_chat(ask("oom")).ok());
  CHECK(local_events.count(Event::Kind::kSharedStateUnavailable) == 1);
  CHECK(local_events.first(Event::Kind::kSharedStateUnavailable).find("OOM") != std::string::npos);
  auto refused = failing->guarded_chat(ask("oom"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().category == ErrorCategory::kConnection);
  CHECK(refused.error().message.find("OOM") != std::string::npos);
  set({"CONFIG", "SET", "maxmemory", "0"});
  // The probe writes: it finds the server back only once it takes writes again.
  REQUIRE(eventually([&] { return local_events.count(Event::Kind::kSharedStateRestored) == 1; }));
  REQUIRE(eventually([&] { return fail_events.count(Event::Kind::kSharedStateRestored) == 1; }));
  CHECK(failing->guarded_chat(ask("after")).ok());

  // Demoted to a replica of a master that is not there: every write answers READONLY.
  const std::string nowhere = std::to_string(RedisServer::free_port());
  set({"REPLICAOF", "127.0.0.1", nowhere});
  CHECK(local->guarded_chat(ask("replica")).ok());
  REQUIRE(local_events.count(Event::Kind::kSharedStateUnavailable) == 2);
  CHECK(local_events.nth(Event::Kind::kSharedStateUnavailable, 1).find("READONLY") != std::string::npos);
  auto read_only = failing->guarded_chat(ask("replica"));
  REQUIRE_FALSE(read_only.ok());
  CHECK(read_only.error().message.find("READONLY") != std::string::npos);
  set({"REPLICAOF", "NO", "ONE"});
  REQUIRE(eventually([&] { return local_events.count(Event::Kind::kSharedStateRestored) == 2; }));
  REQUIRE(eventually([&] { return fail_events.count(Event::Kind::kSharedStateRestored) == 2; }));
  CHECK(failing->guarded_chat(ask("after")).ok());
  CHECK(server->stats().requests == 9);  // the failing client sent nothing while Redis refused
}

TEST_CASE("Redis restarted mid-run, and its script cache flushed: calls go on, the fleet is used again") {
  auto redis = RedisServer::start({});
  REQUIRE(redis);
  auto server = std::move(mock::MockServer::start({}).value());
  Events events;
  ClientOptions o;
  o.targets = {
      {.name = "a", .base_url = server->base_url(), .model = "gpt-a", .limits = {.requests_per_minute = 1000}}};
  o.shared_state = shared(*redis);
  o.on_event = events.sink();
  auto client = std::move(Client::create(std::move(o)).value());
  internal::RedisConnection look(*internal::parse_redis_url(redis->url()), milliseconds(2000));
  auto allowance = [&] {
    auto r = look.command({"HGET", "llmguard:{test}:bucket:a", "req"});
    return r.ok() && r->type == internal::RedisReply::Type::kString ? std::stod(r->text) : -1.0;
  };
  auto metric = [&](std::string_view name) {
    const std::string text = client->metrics();
    const std::string line = "\n" + std::string(name) + " ";
    const std::size_t at = text.find(line);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + line.size()));
  };
  CHECK(client->guarded_chat(ask("one")).ok());
  CHECK(allowance() == doctest::Approx(999).epsilon(0.01));
  CHECK(metric("llmguard_shared_state_up") == 1);
  // An admission and its settlement: two scripts, in one or two round trips.
  REQUIRE(eventually([&] { return metric("llmguard_shared_state_scripts_total") >= 2; }));
  CHECK(metric("llmguard_shared_state_round_trips_total") >= 1);
  REQUIRE(look.command({"SCRIPT", "FLUSH"}).ok());
  CHECK(client->guarded_chat(ask("two")).ok());
  CHECK(allowance() < 999);  // admitted by the fleet: the script was sent again

  REQUIRE(redis->restart({}));
  REQUIRE_FALSE(look.command({"PING"}).ok());  // this connection was closed too; the next command reconnects
  for (int i = 0; i < 3; ++i) CHECK(client->guarded_chat(ask("during")).ok());
  // The restart closed the connection: the client went on alone, then found Redis back.
  CHECK(events.count(Event::Kind::kSharedStateUnavailable) == 1);
  REQUIRE(eventually([&] { return events.count(Event::Kind::kSharedStateRestored) == 1; }));
  CHECK(metric("llmguard_shared_state_up") == 1);
  CHECK(client->guarded_chat(ask("after")).ok());
  CHECK(allowance() > 0);
}

}  // namespace
}  // namespace llmguard
