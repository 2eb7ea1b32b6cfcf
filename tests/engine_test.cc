// The resilience engine end to end: real providers' failure replies, served
// by the mock over loopback HTTP and met through the real libcurl transport.
// Every case asserts what the engine decided (category, trail, which models
// the mock was asked for) and never a measured duration; waits are a few ms.
#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "llmguard/client.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

// Bodies as the providers publish them (see tests/corpus for sources).
constexpr std::string_view kOpenAIRateLimit =
    R"({"error":{"message":"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.","type":"requests","param":null,"code":"rate_limit_exceeded"}})";
constexpr std::string_view kOpenAIQuota =
    R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})";
constexpr std::string_view kOpenAIModelNotFound =
    R"({"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}})";
constexpr std::string_view kOpenAIContext =
    R"({"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9021 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})";
constexpr std::string_view kOpenAIBadRequest =
    R"({"error":{"message":"Invalid value for 'temperature': expected a number between 0 and 2, got 7.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}})";
constexpr std::string_view kAnthropicOverloaded =
    R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
constexpr std::string_view kNginx502 =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

std::unique_ptr<MockServer> start_mock() {
  auto s = MockServer::start({});
  REQUIRE(s.ok());
  return std::move(*s);
}

MockReply reply(int status, std::string_view body, Headers headers = {}) {
  if (body.starts_with('<')) headers.emplace_back("content-type", "text/html");
  return MockReply{.status = status, .headers = std::move(headers), .body = std::string(body)};
}

struct Chain {
  std::unique_ptr<MockServer> server = start_mock();
  ClientOptions options;
  std::vector<std::string> events;
  std::mutex events_mutex;

  Chain() {
    options.retry = RetryPolicy{.max_attempts = 3,
                                .base_delay = milliseconds(1),
                                .max_delay = milliseconds(4),
                                .max_retry_after = milliseconds(1000)};
    options.on_event = [this](const Event& e) {
      std::lock_guard lock(events_mutex);
      std::string line(to_string(e.kind));
      line += ' ';
      line += e.target;
      if (e.category) line += ' ' + std::string(to_string(*e.category));
      events.push_back(std::move(line));
    };
  }
  Target openai(std::string name, std::string model, std::optional<std::int64_t> window = std::nullopt) {
    return Target{.name = std::move(name),
                  .base_url = server->base_url(),
                  .model = std::move(model),
                  .api_key = "test-key",
                  .context_window = window};
  }
  Target anthropic(std::string name, std::string model) {
    return Target{.name = std::move(name),
                  .provider = Provider::kAnthropic,
                  .base_url = server->base_url(),
                  .model = std::move(model),
                  .api_key = "test-key"};
  }
  std::unique_ptr<Client> client() {
    auto c = Client::create(options);
    REQUIRE(c.ok());
    return std::move(*c);
  }
  std::uint64_t requests_for(const std::string& model) const {
    auto stats = server->stats();
    auto it = stats.by_model.find(model);
    return it == stats.by_model.end() ? 0 : it->second;
  }
  bool saw(const std::string& event) {
    std::lock_guard lock(events_mutex);
    return std::find(events.begin(), events.end(), event) != events.end();
  }
};

ChatRequest hello() {
  ChatRequest r;
  r.messages.push_back(Message::user("hello"));
  return r;
}

TEST_CASE("429 with retry-after: the provider's delay is waited, then the same target answers") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a"), chain.openai("backup", "gpt-b")};
  // Azure OpenAI sends both; the millisecond one is the more precise.
  chain.server->enqueue("gpt-a", reply(429, kOpenAIRateLimit, {{"retry-after", "1"}, {"retry-after-ms", "40"}}));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "primary");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kRateLimit);
  CHECK(r->attempts[0].http_status == 429);
  CHECK(r->attempts[1].waited == milliseconds(40));  // the provider's delay, not the 1-4 ms backoff
  CHECK(chain.requests_for("gpt-b") == 0);
}

TEST_CASE("A retry-after far above the cap falls back at once, without waiting") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a"), chain.openai("backup", "gpt-b")};
  chain.server->enqueue("gpt-a", reply(429, kOpenAIRateLimit, {{"retry-after", "3600"}}));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kRateLimit);
  CHECK(r->attempts[1].waited == milliseconds(0));
  CHECK(chain.requests_for("gpt-a") == 1);
  CHECK(chain.saw("fallback primary rate_limit"));
}

TEST_CASE("insufficient_quota 429 goes to the next target with no retry") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a"), chain.openai("backup", "gpt-b")};
  chain.server->enqueue("gpt-a", reply(429, kOpenAIQuota));
  auto client = chain.client();
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  CHECK(r->attempts[0].category == ErrorCategory::kQuotaExhausted);
  CHECK(r->attempts[1].waited == milliseconds(0));
  CHECK(chain.requests_for("gpt-a") == 1);
  // Quota does not come back in seconds: later calls pass the target over.
  auto again = client->guarded_chat(hello());
  REQUIRE(again.ok());
  CHECK(again->attempts[0].skipped == ErrorCategory::kCircuitOpen);
  CHECK(chain.requests_for("gpt-a") == 1);
}

TEST_CASE("A classifier rule of the caller's turns a gateway's own 429 wording into quota: next target, no retry") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a"), chain.openai("backup", "gpt-b")};
  chain.options.classifier_rules = {ClassifierRule{
      .id = "gateway-allowance", .category = ErrorCategory::kQuotaExhausted, .status = 429, .words = {"allowance"}}};
  chain.server->enqueue("gpt-a", reply(429, R"({"error":{"message":"Team allowance for this month is spent"}})"));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kQuotaExhausted);
  CHECK(chain.requests_for("gpt-a") == 1);
}

TEST_CASE("A classifier rule that cannot match anything is refused when the client is made") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a")};
  chain.options.classifier_rules = {ClassifierRule{.id = "empty", .category = ErrorCategory::kAuth}};
  auto c = Client::create(chain.options);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().category == ErrorCategory::kBadRequest);
  CHECK(c.error().message.find("\"empty\"") != std::string::npos);
}

TEST_CASE("404 for the model goes to the next target, which answers") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-9"), chain.anthropic("backup", "claude-x")};
  chain.server->enqueue("gpt-9", reply(404, kOpenAIModelNotFound));
  auto client = chain.client();
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  CHECK(r->content == "Hello from claude-x. You said: hello");
  CHECK(r->attempts[0].category == ErrorCategory::kModelNotFound);
  CHECK(chain.requests_for("gpt-9") == 1);
  // The missing model is out for an hour: the next call goes straight on.
  auto next = client->guarded_chat(hello());
  REQUIRE(next.ok());
  CHECK(next->attempts[0].skipped == ErrorCategory::kCircuitOpen);
  CHECK(chain.requests_for("gpt-9") == 1);
}

TEST_CASE("Context overflow skips a smaller window and a larger one answers") {
  Chain chain;
  chain.options.targets = {chain.openai("mid", "m-8k", 8192), chain.openai("small", "m-4k", 4096),
                           chain.openai("large", "m-128k", 128000)};
  chain.server->enqueue("m-8k", reply(400, kOpenAIContext));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "large");
  REQUIRE(r->attempts.size() == 3);
  CHECK(r->attempts[0].category == ErrorCategory::kContextOverflow);
  CHECK(r->attempts[1].skipped == ErrorCategory::kContextOverflow);
  CHECK(chain.requests_for("m-8k") == 1);  // never retried unchanged
  CHECK(chain.requests_for("m-4k") == 0);
  CHECK(chain.requests_for("m-128k") == 1);
}

TEST_CASE("503, 503, 200 on one target") {
  Chain chain;
  chain.options.targets = {chain.openai("only", "gpt-a")};
  const std::string_view overloaded =
      R"({"error":{"message":"The server is overloaded or not ready yet.","type":"server_error"}})";
  chain.server->enqueue("gpt-a", reply(503, overloaded));
  chain.server->enqueue("gpt-a", reply(503, overloaded));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 3);
  CHECK(r->attempts[0].category == ErrorCategory::kTransient);
  CHECK(r->attempts[1].category == ErrorCategory::kTransient);
  CHECK_FALSE(r->attempts[2].category.has_value());
  CHECK(r->attempts[1].waited <= milliseconds(4));  // jittered backoff within max_delay
}

TEST_CASE("An nginx HTML 502 is transient and retried") {
  Chain chain;
  chain.options.targets = {chain.openai("only", "gpt-a")};
  chain.server->enqueue("gpt-a", reply(502, kNginx502));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->attempts[0].category == ErrorCategory::kTransient);
  CHECK(r->attempts[0].http_status == 502);
  CHECK(chain.requests_for("gpt-a") == 2);
}

TEST_CASE("Anthropic 529 overloaded is transient and retried") {
  Chain chain;
  chain.options.targets = {chain.anthropic("claude", "claude-x")};
  chain.server->enqueue("claude-x", reply(529, kAnthropicOverloaded));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->attempts[0].category == ErrorCategory::kTransient);
  CHECK(r->attempts[0].http_status == 529);
  CHECK(r->target == "claude");
}

TEST_CASE("A hang times out the attempt, then the next target answers") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a"), chain.openai("backup", "gpt-b")};
  chain.options.retry.max_attempts = 1;
  chain.options.timeouts.total = milliseconds(200);
  chain.server->enqueue("gpt-a", MockReply{.hang = true});
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  CHECK(r->attempts[0].category == ErrorCategory::kTimeout);
  CHECK(r->attempts[0].http_status == 0);
}

TEST_CASE("A silent target is retried in place only when a rule asks for it") {
  Chain chain;
  chain.options.targets = {chain.openai("only", "gpt-a")};
  chain.options.timeouts.idle = milliseconds(200);
  chain.options.retry.rules = {{.category = ErrorCategory::kTimeout, .action = OnFailure::kRetry}};
  chain.server->enqueue("gpt-a", MockReply{.hang = true});
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTimeout);
  CHECK(chain.requests_for("gpt-a") == 2);
}

TEST_CASE("A connection reset mid-body is retried") {
  Chain chain;
  chain.options.targets = {chain.openai("only", "gpt-a")};
  chain.server->enqueue("gpt-a", MockReply{.reset_after_bytes = 20});
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->attempts[0].category == ErrorCategory::kConnection);
  CHECK(r->content == "Hello from gpt-a. You said: hello");
}

TEST_CASE("A bad request fails fast, with the provider's message intact and no fallback") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a"), chain.openai("backup", "gpt-b")};
  chain.server->enqueue("gpt-a", reply(400, kOpenAIBadRequest));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kBadRequest);
  CHECK(r.error().http_status == 400);
  CHECK(r.error().message == "Invalid value for 'temperature': expected a number between 0 and 2, got 7.");
  CHECK(r.error().provider_code == "invalid_value");
  CHECK(r.error().attempts.size() == 1);
  CHECK(chain.requests_for("gpt-b") == 0);
}

TEST_CASE("Every target failing: the last attempt's error, with the whole trail") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a"), chain.anthropic("backup", "claude-x")};
  chain.options.retry.max_attempts = 2;
  chain.server->enqueue("gpt-a", reply(502, kNginx502));
  chain.server->enqueue("gpt-a", reply(502, kNginx502));
  chain.server->enqueue("claude-x", reply(529, kAnthropicOverloaded));
  chain.server->enqueue("claude-x", reply(529, kAnthropicOverloaded));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kTransient);
  CHECK(r.error().http_status == 529);
  CHECK(r.error().target == "backup");
  CHECK(r.error().provider_type == "overloaded_error");
  REQUIRE(r.error().attempts.size() == 4);
  CHECK(r.error().attempts[0].target == "primary");
  CHECK(r.error().attempts[1].http_status == 502);
  CHECK(r.error().attempts[3].target == "backup");
}

TEST_CASE("An open breaker skips its target with no upstream request") {
  Chain chain;
  chain.options.targets = {chain.openai("primary", "gpt-a"), chain.openai("backup", "gpt-b")};
  chain.options.retry.max_attempts = 1;
  chain.options.breaker.failure_threshold = 2;
  auto client = chain.client();
  for (int i = 0; i < 2; ++i) {
    chain.server->enqueue(
        "gpt-a",
        reply(
            500,
            R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error"}})"));
    auto r = client->guarded_chat(hello());
    REQUIRE(r.ok());
    CHECK(r->target == "backup");
  }
  CHECK(chain.saw("breaker_opened primary transient"));
  CHECK(client->health()[0].state == Client::TargetHealth::State::kOpen);
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->attempts[0].skipped == ErrorCategory::kCircuitOpen);
  CHECK(chain.requests_for("gpt-a") == 2);  // nothing sent on the third call
  CHECK(chain.requests_for("gpt-b") == 3);
}

}  // namespace
}  // namespace llmguard

namespace llmguard {
namespace {

ChatRequest long_conversation() {
  ChatRequest r;
  r.messages = {Message::system("be brief"), Message::user("turn one"), Message::assistant("ok"),
                Message::user("turn two")};
  return r;
}

// Drops the oldest turn after the system prompt, the way an agent trims history.
std::optional<std::vector<Message>> drop_oldest_turn(const std::vector<Message>& messages, const Error& error) {
  if (error.category != ErrorCategory::kContextOverflow || messages.size() < 3) return std::nullopt;
  std::vector<Message> shorter = messages;
  shorter.erase(shorter.begin() + 1);
  return shorter;
}

TEST_CASE("Context overflow: the caller's hook shrinks the messages and the same target answers") {
  Chain chain;
  chain.options.targets = {chain.openai("mid", "m-8k", 8192), chain.openai("large", "m-128k", 128000)};
  chain.server->enqueue("m-8k", reply(400, kOpenAIContext));
  std::vector<std::string> seen_errors;
  CallOptions call;
  call.shrink_messages = [&](const std::vector<Message>& messages, const Error& error) {
    seen_errors.push_back(error.provider_code);
    return drop_oldest_turn(messages, error);
  };
  auto r = chain.client()->guarded_chat(long_conversation(), call);
  REQUIRE(r.ok());
  CHECK(r->target == "mid");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kContextOverflow);
  CHECK(seen_errors == std::vector<std::string>{"context_length_exceeded"});
  CHECK(chain.requests_for("m-128k") == 0);
  // The retry carried the shorter conversation, the first request the whole one.
  auto recorded = chain.server->recent_requests();
  REQUIRE(recorded.size() == 2);
  CHECK(recorded[0].body.find("turn one") != std::string::npos);
  CHECK(recorded[1].body.find("turn one") == std::string::npos);
  CHECK(recorded[1].body.find("turn two") != std::string::npos);
  CHECK(r->content.find("turn two") != std::string::npos);
}

TEST_CASE("Context overflow: a hook that cannot shrink hands over to the larger window") {
  Chain chain;
  chain.options.targets = {chain.openai("mid", "m-8k", 8192), chain.openai("large", "m-128k", 128000)};
  chain.server->enqueue("m-8k", reply(400, kOpenAIContext));
  CallOptions call;
  int calls = 0;
  call.shrink_messages = [&](const std::vector<Message>&, const Error&) -> std::optional<std::vector<Message>> {
    ++calls;
    return std::nullopt;
  };
  auto r = chain.client()->guarded_chat(hello(), call);
  REQUIRE(r.ok());
  CHECK(r->target == "large");
  CHECK(calls == 1);
  CHECK(chain.requests_for("m-8k") == 1);
}

TEST_CASE("Context overflow: shrinking stops after max_shrinks, then the chain goes on") {
  Chain chain;
  chain.options.targets = {chain.openai("mid", "m-8k", 8192), chain.openai("large", "m-128k", 128000)};
  for (int i = 0; i < 4; ++i) chain.server->enqueue("m-8k", reply(400, kOpenAIContext));
  CallOptions call;
  call.max_shrinks = 2;
  call.shrink_messages = [](const std::vector<Message>& messages, const Error&) {
    return std::optional(messages);  // "shrinks" to the same size every time
  };
  auto r = chain.client()->guarded_chat(long_conversation(), call);
  REQUIRE(r.ok());
  CHECK(r->target == "large");
  CHECK(chain.requests_for("m-8k") == 3);  // the first try and two shrunk retries
  CHECK(chain.requests_for("m-128k") == 1);
}

}  // namespace
}  // namespace llmguard

namespace llmguard {
namespace {

TEST_CASE("A category rule sends a content-filter refusal to the next target instead of failing") {
  Chain chain;
  chain.options.targets = {chain.openai("strict", "gpt-a"), chain.anthropic("other", "claude-x")};
  chain.options.retry.rules = {{.category = ErrorCategory::kContentFilter, .action = OnFailure::kNextTarget}};
  chain.server->enqueue(
      "gpt-a",
      reply(
          400,
          R"({"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}})"));
  auto r = chain.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "other");
  CHECK(r->attempts[0].category == ErrorCategory::kContentFilter);
  CHECK(chain.saw("fallback strict content_filter"));
}

}  // namespace
}  // namespace llmguard

namespace llmguard {
namespace {

TEST_CASE("A web page answering a streaming request is no reply: the chain moves on") {
  Chain chain;
  chain.options.targets = {chain.openai("site", "gpt-a"), chain.openai("api", "gpt-b")};
  chain.options.retry.max_attempts = 1;
  chain.server->enqueue("gpt-a",
                        reply(200, "<!DOCTYPE html><html><head><title>Chat</title></head><body></body></html>"));
  CallOptions call;
  std::string streamed;
  call.on_delta = [&](const StreamDelta& d) {
    if (d.kind == StreamDelta::Kind::kText) streamed += d.text;
  };
  auto r = chain.client()->guarded_chat(hello(), call);
  REQUIRE(r.ok());
  CHECK(r->target == "api");
  CHECK(r->attempts[0].category == ErrorCategory::kUnknown);  // as classify() says of such a page
  CHECK(r->attempts[0].http_status == 200);
  CHECK(streamed == r->content);  // nothing of the page reached the caller
}

}  // namespace
}  // namespace llmguard

namespace llmguard {
namespace {

TEST_CASE("Client-side concurrency limit over real HTTP: excess calls wait their turn, none is lost") {
  Chain chain;
  Target limited = chain.openai("only", "gpt-a");
  limited.limits.max_concurrency = 2;
  chain.options.targets = {limited};
  chain.options.deadline = milliseconds(20000);
  for (int i = 0; i < 8; ++i) chain.server->enqueue("gpt-a", MockReply{.delay = milliseconds(30)});
  auto client = chain.client();
  std::mutex mu;
  std::condition_variable cv;
  int ok = 0, done = 0;
  for (int i = 0; i < 8; ++i) {
    ChatRequest r = hello();
    r.caller_tag = i % 2 ? "odd" : "even";
    client->guarded_chat_async(r, {}, [&](Result<ChatResponse> result) {
      std::lock_guard lock(mu);
      ok += result.ok() ? 1 : 0;
      ++done;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return done == 8; }));
  CHECK(ok == 8);
  CHECK(chain.requests_for("gpt-a") == 8);        // every call sent exactly once, none dropped or doubled
  CHECK(chain.server->stats().connections <= 2);  // never more than two requests at once
}

}  // namespace
}  // namespace llmguard
