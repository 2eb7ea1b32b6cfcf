// Budgets and the ledger end to end: real HTTP to the mock, many threads.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "llmguard/client.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using std::chrono::milliseconds;

const Price kPrice{.input_per_mtok = 1000.0, .output_per_mtok = 2000.0};  // dear, so budgets bite fast

ChatRequest ask(std::string text, std::string tag = "", std::optional<std::int64_t> max_tokens = 20) {
  ChatRequest r;
  r.messages.push_back(Message::user(std::move(text)));
  r.caller_tag = std::move(tag);
  r.max_tokens = max_tokens;
  return r;
}

TEST_CASE("32 threads x 200 calls under a USD budget: never overrun, refusals typed, ledger exact") {
  auto server = std::move(mock::MockServer::start({}).value());
  // About $0.033 per call settled, $0.14 reserved: roughly half the 6400 calls fit.
  const double budget = 100.0;
  ClientOptions o;
  o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = kPrice}};
  o.budgets = {Budget{.usd = budget}};
  auto client = std::move(Client::create(std::move(o)).value());

  constexpr int kThreads = 32, kCalls = 200;
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::atomic<std::int64_t> cost_micros{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        auto r = client->guarded_chat(ask("thread " + std::to_string(t) + " call " + std::to_string(i)));
        if (r.ok()) {
          ++ok;
          cost_micros += static_cast<std::int64_t>(*r->cost_usd * 1e6 + 0.5);
        } else if (r.error().category == ErrorCategory::kBudgetExceeded) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(other == 0);
  CHECK(ok + refused == kThreads * kCalls);
  CHECK(ok > kThreads * kCalls / 4);
  CHECK(refused > 0);
  MESSAGE("ok=", ok.load(), " refused=", refused.load(), " spent=", client->budgets().at(0).spent_usd);
  auto state = client->budgets().at(0);
  CHECK(state.reserved_usd == doctest::Approx(0.0));
  CHECK(state.spent_usd <= budget);
  auto usage = client->usage();
  auto stats = server->stats();
  CHECK(usage.total.attempts == static_cast<std::int64_t>(stats.requests));
  CHECK(usage.total.successes == ok);
  CHECK(usage.total.prompt_tokens == static_cast<std::int64_t>(stats.prompt_tokens));
  CHECK(usage.total.completion_tokens == static_cast<std::int64_t>(stats.completion_tokens));
  CHECK(usage.total.cost_usd == doctest::Approx(state.spent_usd));
  CHECK(usage.total.cost_usd == doctest::Approx(static_cast<double>(cost_micros.load()) / 1e6).epsilon(1e-3));
}

TEST_CASE("A reservation that does not fit the primary falls to a cheaper target") {
  auto server = std::move(mock::MockServer::start({}).value());
  ClientOptions o;
  o.targets = {{.name = "dear", .base_url = server->base_url(), .model = "big", .price = Price{100.0, 400.0}},
               {.name = "cheap", .base_url = server->base_url(), .model = "small", .price = Price{0.1, 0.4}}};
  o.budgets = {Budget{.usd = 0.01}};
  auto client = std::move(Client::create(std::move(o)).value());
  auto r = client->guarded_chat(ask("hello", "", 100));
  REQUIRE(r.ok());
  CHECK(r->target == "cheap");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].skipped == ErrorCategory::kBudgetExceeded);
  CHECK(server->stats().by_model.count("big") == 0);
}

TEST_CASE("Under a USD budget an unpriced target is passed over, never called") {
  auto server = std::move(mock::MockServer::start({}).value());
  ClientOptions o;
  o.targets = {{.name = "mystery", .base_url = server->base_url(), .model = "my-finetune"}};
  o.budgets = {Budget{.usd = 100.0}};
  auto client = std::move(Client::create(std::move(o)).value());
  auto r = client->guarded_chat(ask("hello"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kBudgetExceeded);
  CHECK(r.error().message.find("no known price") != std::string::npos);
  CHECK(server->stats().requests == 0);
}

TEST_CASE("usd: 0 means nothing may be spent; other callers' budgets do not apply") {
  auto server = std::move(mock::MockServer::start({}).value());
  ClientOptions o;
  o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = kPrice}};
  o.budgets = {Budget{.caller_tag = "intern", .usd = 0.0}};
  auto client = std::move(Client::create(std::move(o)).value());
  auto refused = client->guarded_chat(ask("hi", "intern"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().category == ErrorCategory::kBudgetExceeded);
  auto allowed = client->guarded_chat(ask("hi", "lead"));
  CHECK(allowed.ok());
  CHECK(server->stats().requests == 1);
}

TEST_CASE("Under a budget a request without max_tokens is sent with the default bound") {
  auto server = std::move(mock::MockServer::start({}).value());
  ClientOptions o;
  o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = kPrice}};
  o.budgets = {Budget{.tokens = 1'000'000}};
  o.budget_default_max_tokens = 321;
  auto client = std::move(Client::create(std::move(o)).value());
  REQUIRE(client->guarded_chat(ask("hi", "", std::nullopt)).ok());
  CHECK(server->recent_requests().at(0).body.find(R"("max_tokens":321)") != std::string::npos);
  CHECK(client->budgets().at(0).spent_tokens == client->usage().total.prompt_tokens + client->usage().total.completion_tokens);
}

TEST_CASE("Failed attempts are counted by category and cost nothing") {
  auto server = std::move(mock::MockServer::start({}).value());
  server->enqueue("gpt-a", {.status = 503, .body = R"({"error":{"message":"overloaded"}})"});
  ClientOptions o;
  o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = kPrice}};
  o.retry.base_delay = milliseconds(1);
  o.retry.max_delay = milliseconds(2);
  o.budgets = {Budget{.usd = 1000.0}};
  auto client = std::move(Client::create(std::move(o)).value());
  auto r = client->guarded_chat(ask("hi", "bot"));
  REQUIRE(r.ok());
  auto usage = client->usage();
  CHECK(usage.total.attempts == 2);
  CHECK(usage.total.failures_by_category[static_cast<std::size_t>(ErrorCategory::kTransient)] == 1);
  CHECK(usage.by_caller.at("bot").successes == 1);
  CHECK(client->budgets().at(0).spent_usd == doctest::Approx(*r->cost_usd));
}

}  // namespace
}  // namespace llmguard
