// The engine's behaviour with time, chance and the network all faked: every
// wait is checked to the millisecond and no test sleeps.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <optional>

#include "fakes.h"
#include "llmguard/client.h"

namespace llmguard {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;
using testing::FakeRandom;
using testing::FakeTransport;
using testing::http;

constexpr std::string_view kOk = R"({"choices":[{"message":{"content":"fine"},"finish_reason":"stop"}],
  "usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}})";
constexpr std::string_view kOverloaded =
    R"({"error":{"message":"That model is currently overloaded with other requests.","type":"server_error","param":null,"code":null}})";

struct Harness {
  FakeClock clock;
  FakeRandom random{0.5};
  std::shared_ptr<FakeTransport> transport = std::make_shared<FakeTransport>(clock);
  std::unique_ptr<Client> client;
  // Responses per target URL substring, consumed in order; absent = 200 kOk.
  std::map<std::string, std::deque<std::optional<Result<HttpResponse>>>> script;

  std::vector<std::string> events;

  explicit Harness(std::vector<Target> targets, RetryPolicy retry = {},
                   std::optional<milliseconds> deadline = std::nullopt,
                   std::function<void(ClientOptions&)> customise = nullptr) {
    ClientOptions o;
    o.targets = std::move(targets);
    o.on_event = [this](const Event& e) {
      std::string line = std::string(to_string(e.kind)) + " " + std::string(e.target);
      if (e.category) line += " " + std::string(to_string(*e.category));
      if (e.kind == Event::Kind::kRetryScheduled || e.kind == Event::Kind::kBreakerOpened) {
        line += " " + std::to_string(e.delay.count()) + "ms";
      }
      events.push_back(line);
    };
    if (customise) customise(o);
    o.retry = retry;
    o.deadline = deadline;
    o.transport = transport;
    o.clock = &clock;
    o.random = &random;
    auto c = Client::create(std::move(o));
    REQUIRE(c.ok());
    client = std::move(*c);
    transport->set_responder([this](const HttpRequest& req) -> std::optional<Result<HttpResponse>> {
      for (auto& [needle, queue] : script) {
        if (req.body.find(needle) != std::string::npos && !queue.empty()) {
          auto r = std::move(queue.front());
          queue.pop_front();
          return r;
        }
      }
      return Result<HttpResponse>(http(200, std::string(kOk)));
    });
  }
  // A call still in flight co-owns the client's state, and the fake holds
  // the call's handlers: the cancels ~Client posts must run for them to go.
  ~Harness() {
    client.reset();
    transport->run_until_idle();
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  void queue(const std::string& model, std::optional<Result<HttpResponse>> r) {
    script["\"" + model + "\""].push_back(std::move(r));
  }

  std::optional<Result<ChatResponse>> run(CallOptions options = {}, milliseconds horizon = milliseconds(600000)) {
    std::optional<Result<ChatResponse>> out;
    ChatRequest req;
    req.messages.push_back(Message::user("hello"));
    client->guarded_chat_async(req, options, [&out](Result<ChatResponse> r) { out.emplace(std::move(r)); });
    transport->run_for(horizon, [&out] { return out.has_value(); });
    return out;
  }
};

Target target(std::string name, std::optional<std::int64_t> window = std::nullopt) {
  return Target{.name = name,
                .base_url = "http://fake/v1",
                .model = name,
                .api_key = "sk-test-" + name + "-0123456789",
                .context_window = window};
}

RetryPolicy policy(int attempts = 3) {
  RetryPolicy p;
  p.max_attempts = attempts;
  p.base_delay = milliseconds(200);
  p.max_delay = milliseconds(5000);
  p.jitter = Jitter::kFull;
  p.max_retry_after = milliseconds(10000);
  return p;
}

TEST_CASE("503, 503, 200 on one target: two jittered waits, then success") {
  Harness h({target("a")}, policy());
  h.queue("a", http(503, std::string(kOverloaded)));
  h.queue("a", http(503, std::string(kOverloaded)));
  auto r = h.run();
  REQUIRE(r.has_value());
  REQUIRE(r->ok());
  CHECK((*r)->content == "fine");
  CHECK((*r)->target == "a");
  const auto& trail = (*r)->attempts;
  REQUIRE(trail.size() == 3);
  CHECK(trail[0].category == ErrorCategory::kTransient);
  CHECK(trail[0].http_status == 503);
  CHECK(trail[0].waited == milliseconds(0));
  CHECK(trail[1].waited == milliseconds(100));  // full jitter, unit 0.5 of 200 ms
  CHECK(trail[2].waited == milliseconds(200));  // of 400 ms
  CHECK_FALSE(trail[2].category.has_value());
  CHECK(h.transport->sent().size() == 3);
}

TEST_CASE("429 with retry-after-ms: the provider's delay is waited exactly") {
  Harness h({target("a")}, policy());
  h.queue("a", http(429, R"({"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}})",
                    {{"retry-after-ms", "1250"}}));
  auto r = h.run();
  REQUIRE(r->ok());
  REQUIRE((*r)->attempts.size() == 2);
  CHECK((*r)->attempts[0].category == ErrorCategory::kRateLimit);
  CHECK((*r)->attempts[1].waited == milliseconds(1250));
}

TEST_CASE("A retry-after above the cap falls back at once without waiting") {
  Harness h({target("a"), target("b")}, policy());
  h.queue("a", http(429, R"({"error":{"message":"slow down"}})", {{"retry-after", "3600"}}));
  auto r = h.run();
  REQUIRE(r->ok());
  CHECK((*r)->target == "b");
  REQUIRE((*r)->attempts.size() == 2);
  CHECK((*r)->attempts[1].target == "b");
  CHECK((*r)->attempts[1].waited == milliseconds(0));
}

TEST_CASE("insufficient_quota and 401 move to the next target with no retry") {
  Harness h({target("a"), target("b"), target("c")}, policy());
  h.queue(
      "a",
      http(
          429,
          R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}})"));
  h.queue(
      "b",
      http(401,
           R"({"error":{"message":"Incorrect API key provided: sk-test-b-0123456789.","code":"invalid_api_key"}})"));
  auto r = h.run();
  REQUIRE(r->ok());
  CHECK((*r)->target == "c");
  const auto& trail = (*r)->attempts;
  REQUIRE(trail.size() == 3);
  CHECK(trail[0].category == ErrorCategory::kQuotaExhausted);
  CHECK(trail[1].category == ErrorCategory::kAuth);
  CHECK(h.transport->sent().size() == 3);
}

TEST_CASE("A bad request fails fast with the provider's message intact") {
  Harness h({target("a"), target("b")}, policy());
  const std::string message = "Invalid value for 'temperature': must be between 0 and 2.";
  h.queue("a", http(400, R"({"error":{"message":")" + message +
                             R"(","type":"invalid_request_error","param":"temperature","code":null}})"));
  auto r = h.run();
  REQUIRE_FALSE(r->ok());
  const Error& e = r->error();
  CHECK(e.category == ErrorCategory::kBadRequest);
  CHECK(e.http_status == 400);
  CHECK(e.message == message);
  CHECK(e.provider_type == "invalid_request_error");
  CHECK(e.target == "a");
  CHECK(e.attempts.size() == 1);
  CHECK(h.transport->sent().size() == 1);
}

TEST_CASE("Context overflow skips smaller windows and a larger one answers") {
  Harness h({target("small", 8000), target("smaller", 4000), target("large", 128000)}, policy());
  h.queue(
      "small",
      http(
          400,
          R"({"error":{"message":"This model's maximum context length is 8192 tokens.","code":"context_length_exceeded"}})"));
  auto r = h.run();
  REQUIRE(r->ok());
  CHECK((*r)->target == "large");
  const auto& trail = (*r)->attempts;
  REQUIRE(trail.size() == 3);
  CHECK(trail[0].category == ErrorCategory::kContextOverflow);
  CHECK(trail[1].target == "smaller");
  CHECK(trail[1].skipped == ErrorCategory::kContextOverflow);
  CHECK(trail[2].target == "large");
  CHECK(h.transport->sent().size() == 2);
}

TEST_CASE("Every target failing returns the last error with the whole trail") {
  Harness h({target("a"), target("b")}, policy(2));
  for (int i = 0; i < 2; ++i) h.queue("a", http(500, "{}"));
  for (int i = 0; i < 2; ++i) h.queue("b", http(503, std::string(kOverloaded)));
  auto r = h.run();
  REQUIRE_FALSE(r->ok());
  CHECK(r->error().category == ErrorCategory::kTransient);
  CHECK(r->error().http_status == 503);
  CHECK(r->error().target == "b");
  CHECK(r->error().attempts.size() == 4);
}

TEST_CASE("A hang ends at the deadline as a timeout, with the open attempt in the trail") {
  Harness h({target("a")}, policy(), milliseconds(5000));
  h.queue("a", std::nullopt);  // never answers
  auto r = h.run({}, milliseconds(60000));
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->ok());
  CHECK(r->error().category == ErrorCategory::kTimeout);
  REQUIRE(r->error().attempts.size() == 1);
  CHECK(r->error().attempts[0].duration == milliseconds(5000));
  CHECK(h.transport->sent()[0].total_timeout <= milliseconds(5000));
}

TEST_CASE("An attempt timing out a hair before the deadline timer still ends the call as a timeout") {
  Harness h({target("a"), target("b")}, policy(), milliseconds(5000));
  h.transport->set_timeout_skew(milliseconds(1));
  h.queue("a", std::nullopt);
  auto r = h.run({}, milliseconds(60000));
  REQUIRE_FALSE(r->ok());
  CHECK(r->error().category == ErrorCategory::kTimeout);
  CHECK(r->error().message.find("deadline") != std::string::npos);
  CHECK(h.transport->sent().size() == 1);  // no retry, no fallback past the deadline
}

TEST_CASE("A wait that would outlast the deadline moves on instead of sleeping past it") {
  Harness h({target("a"), target("b")}, policy(), milliseconds(1000));
  h.queue("a", http(429, "{}", {{"retry-after", "5"}}));  // 5 s > 1 s left
  auto r = h.run();
  REQUIRE(r->ok());
  CHECK((*r)->target == "b");
}

TEST_CASE("Cancelling during a backoff wait stops the call with no further request") {
  Harness h({target("a")}, policy());
  h.queue("a", http(503, "{}"));
  CancellationToken token;
  std::optional<Result<ChatResponse>> out;
  ChatRequest req;
  req.messages.push_back(Message::user("hello"));
  h.client->guarded_chat_async(req, {.cancellation = token},
                               [&](Result<ChatResponse> r) { out.emplace(std::move(r)); });
  h.transport->run_until_idle();  // first attempt fails; a wait is scheduled
  REQUIRE_FALSE(out.has_value());
  token.cancel();
  h.transport->run_for(milliseconds(60000));
  REQUIRE(out.has_value());
  CHECK(out->error().category == ErrorCategory::kCancelled);
  CHECK(h.transport->sent().size() == 1);
}

TEST_CASE("A token cancelled before the call starts sends nothing") {
  Harness h({target("a")}, policy());
  CancellationToken token;
  token.cancel();
  auto r = h.run({.cancellation = token});
  REQUIRE_FALSE(r->ok());
  CHECK(r->error().category == ErrorCategory::kCancelled);
  CHECK(h.transport->sent().empty());
}

TEST_CASE("Keys echoed by a provider never reach the caller") {
  Harness h({target("a")}, policy());
  h.queue("a", http(401, R"({"error":{"message":"bad key sk-test-a-0123456789 given"}})"));
  auto r = h.run();
  REQUIRE_FALSE(r->ok());
  CHECK(r->error().message.find("0123456789") == std::string::npos);
  CHECK(describe(r->error()).find("0123456789") == std::string::npos);
}

TEST_CASE("Cost is computed from the target's price, cached tokens at their own rate") {
  Target t = target("a");
  t.price = Price{.input_per_mtok = 2.0, .output_per_mtok = 8.0, .cached_input_per_mtok = 0.5};
  Harness h({t}, policy());
  h.queue("a", http(200, R"({"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1000,
    "completion_tokens":100,"prompt_tokens_details":{"cached_tokens":400}}})"));
  auto r = h.run();
  REQUIRE(r->ok());
  REQUIRE((*r)->cost_usd.has_value());
  CHECK(*(*r)->cost_usd == doctest::Approx((600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6));
}

TEST_CASE("Request headers: bearer auth for OpenAI, api-key and deployment URL for Azure") {
  Target azure{.name = "az",
               .provider = Provider::kAzure,
               .base_url = "https://res.openai.azure.com/",
               .model = "gpt4o-deploy",
               .api_key = "azure-key-0123456789",
               .api_version = "2024-06-01"};
  Harness h({target("a"), azure}, policy());
  h.queue("a", http(404, R"({"error":{"code":"model_not_found","message":"The model `a` does not exist"}})"));
  auto r = h.run();
  REQUIRE(r->ok());
  const auto& sent = h.transport->sent();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].url == "http://fake/v1/chat/completions");
  CHECK(*find_header(sent[0].headers, "authorization") == "Bearer sk-test-a-0123456789");
  CHECK(sent[1].url ==
        "https://res.openai.azure.com/openai/deployments/gpt4o-deploy/chat/completions?api-version=2024-06-01");
  CHECK(*find_header(sent[1].headers, "api-key") == "azure-key-0123456789");
  CHECK(find_header(sent[1].headers, "authorization") == nullptr);
}

TEST_CASE("Events narrate a retry, a fallback and the success") {
  Harness h({target("a"), target("b")}, policy(2));
  h.queue("a", http(503, "{}"));
  h.queue("a", http(401, "{}"));
  auto r = h.run();
  REQUIRE(r->ok());
  CHECK(h.events == std::vector<std::string>{
                        "attempt_started a",
                        "attempt_failed a transient",
                        "retry_scheduled a transient 100ms",
                        "attempt_started a",
                        "attempt_failed a auth",
                        "breaker_opened a auth 300000ms",
                        "fallback a auth",
                        "attempt_started b",
                    });
}

TEST_CASE("After an auth failure the target is skipped by later calls without a request") {
  Harness h({target("a"), target("b")}, policy());
  h.queue("a", http(401, R"({"error":{"message":"Invalid API key","code":"invalid_api_key"}})"));
  REQUIRE(h.run()->ok());
  const std::size_t sent_before = h.transport->sent().size();
  auto r = h.run();
  REQUIRE(r->ok());
  CHECK((*r)->target == "b");
  REQUIRE((*r)->attempts.size() == 2);
  CHECK((*r)->attempts[0].target == "a");
  CHECK((*r)->attempts[0].skipped == ErrorCategory::kCircuitOpen);
  CHECK(h.transport->sent().size() == sent_before + 1);  // only b was called
  auto health = h.client->health();
  CHECK(health[0].state == Client::TargetHealth::State::kOpen);
  CHECK(health[0].opened_by == ErrorCategory::kAuth);
  h.client->reset_target("a");
  CHECK(h.client->health()[0].state == Client::TargetHealth::State::kClosed);
}

TEST_CASE("An open breaker on every target fails fast with circuit_open and sends nothing") {
  Harness h({target("a")}, policy(1), std::nullopt, [](ClientOptions& o) { o.breaker.failure_threshold = 2; });
  h.queue("a", http(500, "{}"));
  h.queue("a", http(500, "{}"));
  CHECK_FALSE(h.run()->ok());
  CHECK_FALSE(h.run()->ok());
  const std::size_t sent = h.transport->sent().size();
  auto r = h.run();
  REQUIRE_FALSE(r->ok());
  CHECK(r->error().category == ErrorCategory::kCircuitOpen);
  CHECK(h.transport->sent().size() == sent);
  // After open_for the next call is the half-open probe and closes it.
  h.clock.advance(milliseconds(30000));
  auto probe = h.run();
  REQUIRE(probe->ok());
  CHECK(h.client->health()[0].state == Client::TargetHealth::State::kClosed);
}

TEST_CASE("With the retry budget spent the call falls back instead of retrying") {
  Harness h({target("a"), target("b")}, policy(3), std::nullopt, [](ClientOptions& o) {
    o.retry_budget = RetryBudget{.ratio = 0.0, .min_retries = 0, .window = milliseconds(10000)};
  });
  h.queue("a", http(503, "{}"));
  auto r = h.run();
  REQUIRE(r->ok());
  CHECK((*r)->target == "b");
  CHECK((*r)->attempts.size() == 2);
  CHECK(std::find(h.events.begin(), h.events.end(), "retry_budget_exhausted a transient") != h.events.end());
}

TEST_CASE("A target at its concurrency limit is passed over without a request") {
  Target limited = target("a");
  limited.limits.max_concurrency = 1;
  std::optional<Result<ChatResponse>> first;  // before the harness: its teardown cancels the hanging call into it
  Harness h({limited, target("b")}, policy(1), milliseconds(5000));
  h.queue("a", std::nullopt);  // the first call's request hangs on a
  ChatRequest req;
  req.messages.push_back(Message::user("hello"));
  h.client->guarded_chat_async(req, {}, [&first](Result<ChatResponse> r) { first.emplace(std::move(r)); });
  h.transport->run_for(milliseconds(1));
  REQUIRE(h.transport->sent().size() == 1);
  auto second = h.run({}, milliseconds(1000));
  REQUIRE(second.has_value());
  REQUIRE(second->ok());
  CHECK((*second)->target == "b");
  REQUIRE((*second)->attempts.size() == 2);
  CHECK((*second)->attempts[0].target == "a");
  CHECK((*second)->attempts[0].skipped == ErrorCategory::kRateLimit);
  CHECK(h.transport->sent().size() == 2);  // a once (the hanging call), b once
  CHECK(std::find(h.events.begin(), h.events.end(), "target_skipped a rate_limit") != h.events.end());
}

TEST_CASE("Requests per minute: with every target at its limit the call waits for the refill, within its deadline") {
  Target limited = target("a");
  limited.limits.requests_per_minute = 2;
  Harness h({limited}, policy(1), milliseconds(60000));
  const auto start = h.clock.now();
  REQUIRE(h.run()->ok());
  REQUIRE(h.run()->ok());
  CHECK(h.clock.now() - start < milliseconds(1000));  // the minute's burst
  auto third = h.run();
  REQUIRE(third->ok());
  CHECK(h.clock.now() - start >= milliseconds(30000));  // 2/min: the next slot 30 s on
  REQUIRE((*third)->attempts.size() == 2);
  CHECK((*third)->attempts[0].skipped == ErrorCategory::kRateLimit);  // said once, however long the wait
  CHECK(h.transport->sent().size() == 3);
}

TEST_CASE("A call without a deadline waiting for a limit is kept until its turn, blocking or async") {
  // Nothing but the wait line refers to such a call while it waits: no
  // deadline timer, no retry timer, no transfer.
  Target limited = target("a");
  limited.limits.requests_per_minute = 1;
  Harness h({limited}, policy(1));
  REQUIRE(h.run()->ok());
  std::optional<Result<ChatResponse>> async;
  ChatRequest req;
  req.messages.push_back(Message::user("hello"));
  h.client->guarded_chat_async(req, {}, [&async](Result<ChatResponse> r) { async.emplace(std::move(r)); });
  h.transport->run_for(milliseconds(1));
  CHECK_FALSE(async.has_value());
  CHECK(h.transport->sent().size() == 1);
  h.transport->run_for(milliseconds(61000), [&async] { return async.has_value(); });
  REQUIRE(async.has_value());
  REQUIRE(async->ok());
  CHECK(h.transport->sent().size() == 2);
  auto third = h.run({}, milliseconds(120000));
  REQUIRE(third.has_value());
  REQUIRE(third->ok());
  CHECK(h.transport->sent().size() == 3);
}

TEST_CASE("Callers waiting for a limited target are served in turn by caller tag, in order within a tag") {
  Target limited = target("a");
  limited.limits.max_concurrency = 1;
  Harness h({limited}, policy(1), milliseconds(60000), [](ClientOptions& o) {
    o.timeouts.total = milliseconds(1000);
    o.breaker.failure_threshold = 0;  // the holder's silent timeout would open the breaker: this is about the line
  });
  h.queue("a", std::nullopt);  // the first call holds the only slot until its attempt times out
  std::vector<std::string> finished;
  auto start = [&](std::string tag, std::string text) {
    ChatRequest req;
    req.caller_tag = tag;
    req.messages.push_back(Message::user(text));
    h.client->guarded_chat_async(
        req, {}, [&finished, text](Result<ChatResponse> r) { finished.push_back(text + (r.ok() ? "" : " failed")); });
  };
  start("holder", "holder");
  h.transport->run_for(milliseconds(1));
  for (int i = 1; i <= 3; ++i) start("bulk", "bulk-" + std::to_string(i));
  start("user", "user-1");
  h.transport->run_for(milliseconds(10000), [&finished] { return finished.size() == 5; });
  // One tag's burst queued first does not make the other tag wait behind all of it.
  CHECK(finished == std::vector<std::string>{"holder failed", "bulk-1", "user-1", "bulk-2", "bulk-3"});
  std::vector<std::string> order;
  for (const auto& sent : h.transport->sent()) {
    for (const char* text : {"holder", "bulk-1", "bulk-2", "bulk-3", "user-1"}) {
      if (sent.body.find(text) != std::string::npos) order.push_back(text);
    }
  }
  CHECK(order == std::vector<std::string>{"holder", "bulk-1", "user-1", "bulk-2", "bulk-3"});
}

TEST_CASE("A caller out of budget leaves the line at once: other callers' turns are not held up") {
  Target limited = target("a");
  limited.limits.max_concurrency = 1;
  limited.price = Price{.input_per_mtok = 1, .output_per_mtok = 1};
  Harness h({limited}, policy(1), milliseconds(60000), [](ClientOptions& o) {
    o.timeouts.total = milliseconds(1000);
    o.breaker.failure_threshold = 0;  // as above: the holder's silent timeout must not open the breaker
    o.budgets = {Budget{.caller_tag = "broke", .usd = 0.0}};
  });
  h.queue("a", std::nullopt);  // the holder keeps the only slot for a second
  std::vector<std::string> finished;
  std::vector<int> skip_events;
  auto start = [&](std::string tag, std::string text) {
    ChatRequest req;
    req.caller_tag = tag;
    req.messages.push_back(Message::user(text));
    h.client->guarded_chat_async(req, {}, [&finished, text](Result<ChatResponse> r) {
      finished.push_back(text + (r.ok() ? "" : std::string(" ") + std::string(to_string(r.error().category))));
    });
  };
  start("holder", "holder");
  h.transport->run_for(milliseconds(1));
  const auto before = h.clock.now();
  start("broke", "broke-1");
  h.transport->run_for(milliseconds(1));
  // Refused by its budget on the only target: it ends now, it does not wait for the slot.
  REQUIRE(finished == std::vector<std::string>{"broke-1 budget_exceeded"});
  CHECK(h.clock.now() - before <= milliseconds(1));
  const auto fired_before = h.transport->timers_fired();
  start("user", "user-1");
  h.transport->run_for(milliseconds(10000), [&finished] { return finished.size() == 3; });
  CHECK(finished == std::vector<std::string>{"broke-1 budget_exceeded", "holder timeout", "user-1"});
  // A second of waiting for the slot took a handful of loop turns (start,
  // the holder's timeout, the wake-up, the answer), not a poll every few ms.
  CHECK(h.transport->timers_fired() - fired_before < 10);
  // Waiting is woken, not polled: the waiting call says it skipped the limited target once.
  CHECK(std::count(h.events.begin(), h.events.end(), "target_skipped a rate_limit") == 1);
}

TEST_CASE("A wait for client-side limits that would outlast the deadline fails at once, sending nothing") {
  Target limited = target("a");
  limited.limits.requests_per_minute = 1;
  Harness h({limited}, policy(1), milliseconds(10000));
  REQUIRE(h.run()->ok());
  const auto before = h.clock.now();
  auto r = h.run();
  REQUIRE_FALSE(r->ok());
  CHECK(r->error().category == ErrorCategory::kRateLimit);
  CHECK(r->error().message.find("client-side limits") != std::string::npos);
  CHECK(h.clock.now() == before);  // no waiting for a slot it could not use
  CHECK(h.transport->sent().size() == 1);
}

TEST_CASE("Client::create refuses durations, prices and budgets out of range, and a key variable that is not set") {
  auto message = [](std::function<void(ClientOptions&)> change) {
    ClientOptions o;
    o.targets = {target("a")};
    change(o);
    auto c = Client::create(std::move(o));
    return c.ok() ? std::string("accepted") : c.error().message;
  };
  using std::chrono::hours;
  CHECK(message([](ClientOptions& o) { o.timeouts.idle = milliseconds::max(); }) ==
        "timeouts.idle must be at most 7 days (604800000 ms)");
  CHECK(message([](ClientOptions& o) { o.deadline = hours(24 * 8); }).find("deadline must be at most") == 0);
  CHECK(message([](ClientOptions& o) { o.breaker.open_for = milliseconds(-1); }).find("must not be negative") !=
        std::string::npos);
  CHECK(message([](ClientOptions& o) { o.retry.max_attempts = 1000; }) == "retry.max_attempts must be at most 100");
  CHECK(message([](ClientOptions& o) { o.targets[0].price = Price{.input_per_mtok = -1}; }).find("prices") !=
        std::string::npos);
  CHECK(message([](ClientOptions& o) { o.targets[0].price = Price{.output_per_mtok = std::nan("")}; }).find("prices") !=
        std::string::npos);
  CHECK(message([](ClientOptions& o) {
          o.budgets = {Budget{.usd = std::numeric_limits<double>::infinity()}};
        }).find("budgets[0]") != std::string::npos);
  CHECK(message([](ClientOptions& o) { o.timeouts.ttft = hours(24 * 7); }) == "accepted");
  ::unsetenv("LLMGUARD_TEST_UNSET_KEY");
  CHECK(message([](ClientOptions& o) {
          o.targets[0].api_key.clear();
          o.targets[0].api_key_env = "LLMGUARD_TEST_UNSET_KEY";
        }) == "target \"a\": api_key_env names LLMGUARD_TEST_UNSET_KEY, which is not set (or is empty)");
}

TEST_CASE("A per-call deadline out of range: at or below zero has passed, beyond a week is a week") {
  Harness h({target("a")}, policy(1));
  auto passed = h.run(CallOptions{.deadline = milliseconds(-5)});
  REQUIRE_FALSE(passed->ok());
  CHECK(passed->error().category == ErrorCategory::kTimeout);
  CHECK(h.transport->sent().empty());
  auto huge = h.run(CallOptions{.deadline = milliseconds::max()});  // no overflow: held to a week
  REQUIRE(huge->ok());
  CHECK(h.transport->sent().size() == 1);
}

TEST_CASE("Client::create refuses bad options with a message naming the field") {
  auto make = [](ClientOptions o) { return Client::create(std::move(o)); };
  CHECK(make({}).error().message.find("targets") != std::string::npos);
  ClientOptions dup;
  dup.targets = {target("a"), target("a")};
  CHECK(make(dup).error().message.find("duplicate") != std::string::npos);
  ClientOptions no_model;
  no_model.targets = {Target{.name = "x", .base_url = "http://h/v1"}};
  CHECK(make(no_model).error().message.find("model") != std::string::npos);
  ClientOptions bad_url;
  bad_url.targets = {Target{.name = "x", .base_url = "ftp://h", .model = "m"}};
  CHECK(make(bad_url).error().message.find("base_url") != std::string::npos);
  ClientOptions bad_retry;
  bad_retry.targets = {target("a")};
  bad_retry.retry.max_attempts = 0;
  CHECK(make(bad_retry).error().category == ErrorCategory::kBadRequest);
  ClientOptions bad_rule;
  bad_rule.targets = {target("a")};
  bad_rule.retry.rules = {{.category = ErrorCategory::kContextOverflow, .action = OnFailure::kRetry}};
  CHECK(make(bad_rule).error().message.find("retry.rules[0]: context_overflow") != std::string::npos);
  bad_rule.retry.rules = {{.category = ErrorCategory::kCircuitOpen, .action = OnFailure::kFail}};
  CHECK(make(bad_rule).error().message.find("retry.rules[0]: circuit_open") != std::string::npos);
  bad_rule.retry.rules = {{.category = ErrorCategory::kRateLimit, .action = OnFailure::kRetry, .max_attempts = 0}};
  CHECK(make(bad_rule).error().message.find("max_attempts") != std::string::npos);
  ClientOptions bad_limits;
  Target zero = target("z");
  zero.limits.requests_per_minute = 0;
  bad_limits.targets = {zero};
  CHECK(make(bad_limits).error().message.find("target \"z\": limits must be positive") != std::string::npos);
  ClientOptions missing_ca;
  missing_ca.targets = {target("a")};
  missing_ca.ca_file = "/nonexistent/corp-ca.pem";
  CHECK(make(missing_ca).error().message.find("ca_file \"/nonexistent/corp-ca.pem\"") != std::string::npos);
  ClientOptions header_injection;
  Target t = target("a");
  t.headers = {{"x-extra", "v\r\nx-evil: 1"}};
  header_injection.targets = {t};
  CHECK_FALSE(make(header_injection).ok());
}

}  // namespace
}  // namespace llmguard
