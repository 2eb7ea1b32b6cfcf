// guarded_chat() end to end: the real libcurl transport over loopback HTTP to
// the mock provider. Delays are a few milliseconds and every assertion is on
// outcomes and recorded (planned) waits, never on measured durations.
#include "llmguard/client.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <thread>

#include "mock_server.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

std::unique_ptr<MockServer> start_mock(mock::MockOptions o = {}) {
  auto s = MockServer::start(std::move(o));
  REQUIRE(s.ok());
  return std::move(*s);
}

RetryPolicy fast_retry() {
  RetryPolicy p;
  p.max_attempts = 3;
  p.base_delay = milliseconds(1);
  p.max_delay = milliseconds(5);
  p.max_retry_after = milliseconds(2000);
  return p;
}

std::unique_ptr<Client> make_client(std::vector<Target> targets, RetryPolicy retry = fast_retry(),
                                    std::optional<milliseconds> deadline = std::nullopt) {
  ClientOptions o;
  o.targets = std::move(targets);
  o.retry = retry;
  o.deadline = deadline;
  auto c = Client::create(std::move(o));
  REQUIRE(c.ok());
  return std::move(*c);
}

ChatRequest hello(std::string text = "hello") {
  ChatRequest r;
  r.messages.push_back(Message::user(std::move(text)));
  return r;
}

TEST_CASE("A plain call succeeds and reports the mock's usage exactly") {
  auto server = start_mock();
  auto client = make_client({{.name = "main", .base_url = server->base_url(), .model = "gpt-a", .api_key = "k"}});
  auto r = client->guarded_chat(hello("hi there"));
  REQUIRE(r.ok());
  CHECK(r->content == "Hello from gpt-a. You said: hi there");
  CHECK(r->target == "main");
  CHECK(r->finish_reason == "stop");
  auto stats = server->stats();
  CHECK(r->usage.prompt_tokens == static_cast<std::int64_t>(stats.prompt_tokens));
  CHECK(r->usage.completion_tokens == static_cast<std::int64_t>(stats.completion_tokens));
  CHECK_FALSE(r->usage.estimated);
  REQUIRE(r->attempts.size() == 1);
  CHECK(r->attempts[0].http_status == 200);
}

TEST_CASE("Anthropic targets speak the Messages API with x-api-key") {
  auto server = start_mock();
  auto client = make_client({{.name = "claude",
                              .provider = Provider::kAnthropic,
                              .base_url = server->base_url(),
                              .model = "claude-x",
                              .api_key = "ant-key"}});
  auto r = client->guarded_chat(hello("yo"));
  REQUIRE(r.ok());
  CHECK(r->content == "Hello from claude-x. You said: yo");
  auto recorded = server->recent_requests();
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].path == "/v1/messages");
  CHECK(*find_header(recorded[0].headers, "x-api-key") == "ant-key");
  CHECK(*find_header(recorded[0].headers, "anthropic-version") == "2023-06-01");
}

TEST_CASE("503, 503, 200 on one target over real HTTP") {
  auto server = start_mock();
  server->enqueue("gpt-a",
                  MockReply{.status = 503, .body = R"({"error":{"message":"overloaded","type":"server_error"}})"});
  server->enqueue("gpt-a",
                  MockReply{.status = 503, .body = R"({"error":{"message":"overloaded","type":"server_error"}})"});
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 3);
  CHECK(r->attempts[0].http_status == 503);
  CHECK(r->attempts[1].http_status == 503);
  CHECK(r->attempts[2].http_status == 200);
  CHECK(server->stats().requests == 3);
}

TEST_CASE("429 with retry-after-ms is honoured, then the call succeeds") {
  auto server = start_mock();
  server->enqueue("gpt-a",
                  MockReply{.status = 429,
                            .headers = {{"retry-after-ms", "20"}},
                            .body = R"({"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}})"});
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kRateLimit);
  CHECK(r->attempts[1].waited == milliseconds(20));
}

TEST_CASE("401 on the primary falls back to a different provider") {
  auto server = start_mock({.require_key = "good-key-123456"});
  auto client = make_client({
      {.name = "primary", .base_url = server->base_url(), .model = "gpt-a", .api_key = "sk-wrong-key-abcdef123456"},
      {.name = "backup",
       .provider = Provider::kAnthropic,
       .base_url = server->base_url(),
       .model = "claude-x",
       .api_key = "good-key-123456"},
  });
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[0].http_status == 401);
}

TEST_CASE("An auth failure's error never carries the key the provider echoed") {
  auto server = start_mock({.require_key = "good-key-123456"});
  const std::string key = "sk-wrong-key-abcdef123456";
  auto client = make_client({{.name = "only", .base_url = server->base_url(), .model = "gpt-a", .api_key = key}});
  auto r = client->guarded_chat(hello());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kAuth);
  CHECK(r.error().message.find("Incorrect API key provided") != std::string::npos);
  CHECK(r.error().message.find("abcdef123456") == std::string::npos);
  CHECK(describe(r.error()).find("abcdef123456") == std::string::npos);
}

TEST_CASE("An HTML 502 from a gateway is retried as transient") {
  auto server = start_mock();
  server->enqueue("gpt-a", MockReply{.status = 502,
                                     .headers = {{"content-type", "text/html"}},
                                     .body = "<html><head><title>502 Bad Gateway</title></head></html>"});
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->attempts[0].category == ErrorCategory::kTransient);
}

TEST_CASE("A reset mid-body is retried as a connection failure") {
  auto server = start_mock();
  server->enqueue("gpt-a", MockReply{.reset_after_bytes = 15});
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->attempts[0].category == ErrorCategory::kConnection);
  CHECK(r->attempts[0].http_status == 0);
}

TEST_CASE("A hang hits the call deadline and comes back as a timeout") {
  auto server = start_mock();
  server->enqueue("gpt-a", MockReply{.hang = true});
  auto client =
      make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}}, fast_retry(), milliseconds(300));
  auto r = client->guarded_chat(hello());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kTimeout);
  REQUIRE_FALSE(r.error().attempts.empty());
  CHECK(r.error().attempts.back().category == ErrorCategory::kTimeout);
}

TEST_CASE("Another thread can cancel a blocked guarded_chat") {
  auto server = start_mock();
  server->enqueue("gpt-a", MockReply{.hang = true});
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  CancellationToken token;
  auto future = std::async(std::launch::async, [&] { return client->guarded_chat(hello(), {.cancellation = token}); });
  while (server->stats().requests == 0) std::this_thread::yield();
  token.cancel();
  auto r = future.get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kCancelled);
}

TEST_CASE("guarded_chat from the event-loop thread is refused instead of deadlocking") {
  auto server = start_mock();
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  std::promise<Result<ChatResponse>> nested;
  client->guarded_chat_async(hello(), {},
                             [&](Result<ChatResponse>) { nested.set_value(client->guarded_chat(hello())); });
  auto r = nested.get_future().get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kBadRequest);
  CHECK(r.error().message.find("event-loop thread") != std::string::npos);
}

TEST_CASE("Destroying a client with a call in flight completes it as cancelled") {
  auto server = start_mock();
  server->enqueue("gpt-a", MockReply{.hang = true});
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  std::promise<ErrorCategory> outcome;
  client->guarded_chat_async(hello(), {}, [&](Result<ChatResponse> r) {
    outcome.set_value(r.ok() ? ErrorCategory::kUnknown : r.error().category);
  });
  while (server->stats().requests == 0) std::this_thread::yield();
  client.reset();
  CHECK(outcome.get_future().get() == ErrorCategory::kCancelled);
}

TEST_CASE("Many threads share one client; every call succeeds and is counted once") {
  auto server = start_mock();
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  constexpr int kThreads = 16;
  constexpr int kCallsEach = 25;
  std::atomic<int> ok{0};
  std::atomic<std::int64_t> completion_tokens{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsEach; ++i) {
        auto r = client->guarded_chat(hello("thread " + std::to_string(t) + " call " + std::to_string(i)));
        if (r.ok() &&
            r->content.find("thread " + std::to_string(t) + " call " + std::to_string(i)) != std::string::npos) {
          ++ok;
          completion_tokens += r->usage.completion_tokens;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == kThreads * kCallsEach);
  auto stats = server->stats();
  CHECK(stats.requests == kThreads * kCallsEach);
  CHECK(completion_tokens.load() == static_cast<std::int64_t>(stats.completion_tokens));
}

TEST_CASE("Async calls from many threads all complete with the right answers") {
  auto server = start_mock();
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  constexpr int kCalls = 200;
  std::atomic<int> matched{0};
  std::atomic<int> finished{0};
  std::promise<void> all_done;
  for (int i = 0; i < kCalls; ++i) {
    client->guarded_chat_async(hello("n" + std::to_string(i)), {}, [&, i](Result<ChatResponse> r) {
      if (r.ok() && r->content.ends_with("n" + std::to_string(i))) ++matched;
      if (++finished == kCalls) all_done.set_value();
    });
  }
  all_done.get_future().wait();
  CHECK(matched == kCalls);
}

TEST_CASE("Base URL and key come from OPENAI_BASE_URL and OPENAI_API_KEY when not given") {
  auto server = start_mock({.require_key = "env-key-0123456789"});
  ::setenv("OPENAI_BASE_URL", server->base_url().c_str(), 1);
  ::setenv("OPENAI_API_KEY", "env-key-0123456789", 1);
  auto client = make_client({{.name = "env", .model = "gpt-a"}});
  ::unsetenv("OPENAI_BASE_URL");
  ::unsetenv("OPENAI_API_KEY");
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "env");
}

TEST_CASE("ANTHROPIC_BASE_URL is taken as Anthropic's SDKs take it: the host, with or without /v1") {
  auto server = start_mock({.require_key = "sk-ant-env-0123456789"});
  ::setenv("ANTHROPIC_API_KEY", "sk-ant-env-0123456789", 1);
  for (const std::string& url : {server->root_url(), server->root_url() + "/", server->base_url()}) {
    CAPTURE(url);
    ::setenv("ANTHROPIC_BASE_URL", url.c_str(), 1);
    auto client = make_client({{.name = "claude", .provider = Provider::kAnthropic, .model = "claude-x"}});
    auto r = client->guarded_chat(hello());
    REQUIRE(r.ok());
    CHECK(r->target == "claude");
  }
  ::unsetenv("ANTHROPIC_BASE_URL");
  ::unsetenv("ANTHROPIC_API_KEY");
  CHECK(server->recent_requests().back().path == "/v1/messages");
}

TEST_CASE("Invalid UTF-8 in a message is refused before anything is sent") {
  auto server = start_mock();
  auto client = make_client({{.name = "a", .base_url = server->base_url(), .model = "gpt-a"}});
  auto r = client->guarded_chat(hello("bad \xc3\x28 byte"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kBadRequest);
  CHECK(r.error().message.find("messages[0].content") != std::string::npos);
  CHECK(server->stats().requests == 0);
}

TEST_CASE("A wrong URL path is reported with the server's message") {
  auto server = start_mock();
  auto client = make_client({{.name = "a", .base_url = server->root_url() + "/v2", .model = "gpt-a"}});
  auto r = client->guarded_chat(hello());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().http_status == 404);
  CHECK(r.error().message.find("Invalid URL (POST /v2/chat/completions)") != std::string::npos);
}

}  // namespace
}  // namespace llmguard
