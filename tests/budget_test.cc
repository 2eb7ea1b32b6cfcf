// Budgets and the ledger end to end: real HTTP to the mock, many threads.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <atomic>
#include <future>
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
  CHECK(client->budgets().at(0).spent_tokens ==
        client->usage().total.prompt_tokens + client->usage().total.completion_tokens);
}

TEST_CASE("A small budget refusing a request without max_tokens says so, and the same request with one passes") {
  auto server = std::move(mock::MockServer::start({}).value());
  ClientOptions o;
  o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = kPrice}};
  o.budgets = {Budget{.tokens = 2'000}};  // room for a short reply, not for the default 4096 output tokens
  auto client = std::move(Client::create(std::move(o)).value());
  auto refused = client->guarded_chat(ask("hi", "", std::nullopt));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().category == ErrorCategory::kBudgetExceeded);
  CHECK(refused.error().message.find("the request sets no max_tokens") != std::string::npos);
  CHECK(refused.error().hint.find("set max_tokens") != std::string::npos);
  CHECK(refused.error().hint.find("4096") != std::string::npos);
  CHECK(server->stats().requests == 0);
  REQUIRE(client->guarded_chat(ask("hi", "", 50)).ok());
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

// An OpenAI reply that bills `completion` tokens whatever max_tokens said, as
// reasoning models and misbehaving proxies do.
mock::MockReply billed(std::int64_t completion) {
  return {.body = fmt::format(R"({{"id":"x","object":"chat.completion","model":"gpt-a","choices":[{{"index":0,)"
                              R"("message":{{"role":"assistant","content":"long answer"}},"finish_reason":"stop"}}],)"
                              R"("usage":{{"prompt_tokens":10,"completion_tokens":{},"total_tokens":{}}}}})",
                              completion, completion + 10)};
}

TEST_CASE(
    "Replies billed beyond their reservations: reported, visible in budgets(), the budget closes, reservations learn") {
  auto server = std::move(mock::MockServer::start({}).value());
  const Price price{.input_per_mtok = 1.0, .output_per_mtok = 1.0};
  ClientOptions o;
  o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = price}};
  o.budgets = {Budget{.usd = 0.01}};
  std::vector<std::string> overruns;
  o.on_event = [&overruns](const Event& e) {
    if (e.kind == Event::Kind::kBudgetOverrun) overruns.emplace_back(e.message);
  };
  auto client = std::move(Client::create(std::move(o)).value());
  // max_tokens 20 reserves ~$0.0001; the reply bills 20,000 completion tokens ($0.02).
  server->enqueue("gpt-a", billed(20'000));
  auto first = client->guarded_chat(ask("hi"));
  REQUIRE(first.ok());
  REQUIRE(overruns.size() == 1);
  CHECK(overruns[0].find("20000 completion tokens for max_tokens 20") != std::string::npos);
  CHECK(overruns[0].find("64.0x") != std::string::npos);  // 1000x seen, capped
  auto state = client->budgets().at(0);
  CHECK(state.spent_usd == doctest::Approx(0.02001));
  CHECK(state.overrun_usd > 0.019);
  CHECK(state.overrun_tokens > 19'000);
  // Spent is past the limit: the next call is refused without a request.
  const auto requests = server->stats().requests;
  auto second = client->guarded_chat(ask("again"));
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().category == ErrorCategory::kBudgetExceeded);
  CHECK(server->stats().requests == requests);
}

TEST_CASE(
    "16 threads against a proxy that bills 50x max_tokens: spend stays within the limit plus the overruns reported") {
  auto server = std::move(mock::MockServer::start({}).value());
  const Price price{.input_per_mtok = 1.0, .output_per_mtok = 1.0};
  const double limit = 0.10;
  ClientOptions o;
  o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = price}};
  o.budgets = {Budget{.usd = limit}};
  auto client = std::move(Client::create(std::move(o)).value());
  for (int i = 0; i < 2000; ++i) server->enqueue("gpt-a", billed(1000));  // 50x max_tokens 20: $0.001 a reply
  constexpr int kThreads = 16, kCalls = 40;
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        auto r = client->guarded_chat(ask("q"));
        if (r.ok()) ++ok;
        else if (r.error().category == ErrorCategory::kBudgetExceeded) ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok + refused == kThreads * kCalls);
  const auto state = client->budgets().at(0);
  MESSAGE("ok=", ok.load(), " spent=", state.spent_usd, " overrun=", state.overrun_usd);
  CHECK(state.spent_usd <= limit + state.overrun_usd + 1e-9);
  // Once a reply showed the overbilling, reservations count 50x the output:
  // a $0.10 budget admits about a hundred such replies, not hundreds.
  CHECK(ok <= 120);
  CHECK(state.spent_usd < 2 * limit);
  CHECK(client->usage().total.cost_usd == doctest::Approx(state.spent_usd));
}

TEST_CASE("Attempts cancelled in flight are in the ledger, estimated, and keep their reservation as spent") {
  auto server = std::move(mock::MockServer::start({}).value());
  server->enqueue("gpt-a", {.hang = true});
  ClientOptions o;
  o.targets = {{.name = "a", .base_url = server->base_url(), .model = "gpt-a", .price = kPrice}};
  o.budgets = {Budget{.usd = 1000.0}};
  auto client = std::move(Client::create(std::move(o)).value());
  CancellationToken token;
  std::promise<Result<ChatResponse>> done;
  client->guarded_chat_async(ask("hang"), CallOptions{.cancellation = token},
                             [&done](Result<ChatResponse> r) { done.set_value(std::move(r)); });
  for (int i = 0; i < 2000 && server->stats().requests == 0; ++i) std::this_thread::sleep_for(milliseconds(1));
  REQUIRE(server->stats().requests == 1);
  token.cancel();
  auto r = done.get_future().get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kCancelled);
  REQUIRE(r.error().attempts.size() == 1);
  CHECK(r.error().attempts[0].category == ErrorCategory::kCancelled);
  auto usage = client->usage();
  CHECK(usage.total.attempts == 1);
  CHECK(usage.total.failures_by_category[static_cast<std::size_t>(ErrorCategory::kCancelled)] == 1);
  CHECK(usage.total.estimated_prompt_tokens > 0);
  CHECK(usage.total.estimated_cost_usd > 0);
  auto state = client->budgets().at(0);
  CHECK(state.reserved_usd == doctest::Approx(0.0));
  CHECK(state.spent_usd > 0);  // the reservation, kept: the upstream may bill it
}

}  // namespace
}  // namespace llmguard
