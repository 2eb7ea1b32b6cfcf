// A hostile or broken upstream, met over loopback through the real libcurl
// transport: oversized and endless replies, non-HTTP answers, absurd delays,
// echoed credentials and lying usage. Each case asserts a typed outcome and
// that nothing is lost, leaked or left unbounded.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llmguard/client.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

struct Upstream {
  std::unique_ptr<MockServer> server = std::move(MockServer::start({}).value());
  ClientOptions options;

  Upstream() {
    options.retry = RetryPolicy{.max_attempts = 2, .base_delay = milliseconds(1), .max_delay = milliseconds(2)};
    options.targets = {target("primary", "gpt-a"), target("backup", "gpt-b")};
  }
  Target target(std::string name, std::string model, std::string key = "test-key") {
    return Target{
        .name = std::move(name), .base_url = server->base_url(), .model = std::move(model), .api_key = std::move(key)};
  }
  std::unique_ptr<Client> client() { return std::move(Client::create(options).value()); }
  std::uint64_t requests_for(const std::string& model) const {
    auto stats = server->stats();
    auto it = stats.by_model.find(model);
    return it == stats.by_model.end() ? 0 : it->second;
  }
};

ChatRequest hello() {
  ChatRequest r;
  r.messages.push_back(Message::user("hello"));
  return r;
}

TEST_CASE("An oversized error body on a streaming call is a transient upstream fault: the fallback answers") {
  Upstream up;
  up.options.max_response_bytes = 64 * 1024;
  up.options.retry.max_attempts = 1;
  const std::string huge = R"({"error":{"message":")" + std::string(200 * 1024, 'x') + R"("}})";
  up.server->enqueue("gpt-a", MockReply{.status = 500, .body = huge});
  std::string streamed;
  auto r =
      up.client()->guarded_chat(hello(), CallOptions{.on_delta = [&](const StreamDelta& d) { streamed += d.text; }});
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTransient);  // not cancelled: the chain went on
  CHECK(streamed == r->content);
}

TEST_CASE("A retry-after of 10^12 seconds means fall back now, not retry after ordinary backoff") {
  Upstream up;
  up.server->enqueue("gpt-a", MockReply{.status = 429,
                                        .headers = {{"retry-after", "1000000000000"}},
                                        .body = R"({"error":{"message":"slow down","code":"rate_limit_exceeded"}})"});
  auto r = up.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  CHECK(up.requests_for("gpt-a") == 1);
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kRateLimit);
  CHECK(r->attempts[1].waited == milliseconds(0));
}

TEST_CASE("A silent primary costs one attempt timeout: the backup answers, and the next call skips the primary") {
  Upstream up;
  up.options.retry.max_attempts = 3;
  up.options.timeouts.total = milliseconds(300);
  up.server->enqueue("gpt-a", MockReply{.hang = true});
  auto client = up.client();
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTimeout);
  CHECK(r->attempts[0].next == NextStep::kNextTarget);
  CHECK(r->attempts[0].reason == StepReason::kSilentRoute);
  CHECK(up.requests_for("gpt-a") == 1);  // not retried in place
  auto again = client->guarded_chat(hello());
  REQUIRE(again.ok());
  CHECK(again->target == "backup");
  REQUIRE(again->attempts.size() == 2);
  CHECK(again->attempts[0].skipped == ErrorCategory::kCircuitOpen);
  CHECK(up.requests_for("gpt-a") == 1);
}

TEST_CASE("A reply that sent its headers and then stalled is a slow provider: retried in place") {
  Upstream up;
  up.options.timeouts.total = milliseconds(300);
  up.server->enqueue("gpt-a", MockReply{.drip = milliseconds(5000)});  // headers now, the body much later
  auto r = up.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "primary");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTimeout);
  CHECK(r->attempts[0].next == NextStep::kRetry);
  CHECK(r->attempts[0].reason == StepReason::kCategoryDefault);
  CHECK(up.requests_for("gpt-a") == 2);
}

TEST_CASE(
    "A key with no well-known prefix, echoed in code, type and message (upper-cased, cut short), never comes back") {
  const std::string key = "corp-secret-0123456789abcdef";
  const std::string gateway = "gw-token-5f3a9c2e7d1b";
  Upstream up;
  up.options.retry.max_attempts = 1;
  up.options.targets = {up.target("primary", "gpt-a", key), up.target("backup", "gpt-b", key)};
  up.options.targets[0].headers = {{"x-gateway-key", gateway}};
  std::vector<std::string> event_messages;
  up.options.on_event = [&](const Event& e) { event_messages.emplace_back(e.message); };
  std::string upper = key;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // The message is cut at 1024 bytes by the classifier: the key's first 16 bytes end it.
  const std::string padding(1024 - 16 - 60, '.');
  const std::string body = R"({"error":{"code":")" + key + R"(","type":")" + key + R"(","message":"key )" + upper +
                           " via " + gateway + " " + padding + " " + key + R"("}})";
  up.server->enqueue("gpt-a", MockReply{.status = 401, .body = body});
  // The backup's stream breaks with an error event that echoes the key.
  up.server->enqueue("gpt-b", MockReply{.headers = {{"content-type", "text/event-stream"}},
                                        .body = "data: {\"error\":{\"message\":\"quota for " + key + "\",\"type\":\"" +
                                                key + "\",\"code\":\"insufficient_quota\"}}\n\n"});
  auto r = up.client()->guarded_chat(hello(), CallOptions{.on_delta = [](const StreamDelta&) {}});
  REQUIRE_FALSE(r.ok());
  auto leaks = [&](std::string_view text) {
    std::string lower(text);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower.find(key.substr(0, 12)) != std::string::npos || lower.find(gateway) != std::string::npos;
  };
  const Error& e = r.error();
  CHECK(e.category == ErrorCategory::kQuotaExhausted);  // the backup's error, last
  CHECK_FALSE(leaks(e.message));
  CHECK_FALSE(leaks(e.provider_code));
  CHECK_FALSE(leaks(e.provider_type));
  CHECK_FALSE(leaks(describe(e)));
  CHECK(e.message.find("***") != std::string::npos);
  for (const auto& m : event_messages) CHECK_FALSE(leaks(m));
  // The primary's 401: its message, code and type went through the same masking.
  bool saw_auth_event = false;
  for (const auto& m : event_messages) saw_auth_event |= m.find("via ***") != std::string::npos;
  CHECK(saw_auth_event);
}

TEST_CASE("A plain-text error cut at 1024 bytes in the middle of the key: the key's head is masked too") {
  const std::string key = "corp-secret-0123456789abcdef";
  Upstream up;
  up.options.retry.max_attempts = 1;
  up.options.targets = {up.target("only", "gpt-a", key)};
  const std::string body = std::string(1024 - 14, 'x') + " " + key + " and more";  // the cut leaves 13 bytes of it
  up.server->enqueue("gpt-a", MockReply{.status = 403, .headers = {{"content-type", "text/plain"}}, .body = body});
  auto r = up.client()->guarded_chat(hello());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find(key.substr(0, 8)) == std::string::npos);
  CHECK(r.error().message.ends_with("***"));
}

TEST_CASE("An endless stream of valid deltas is cut at max_response_bytes with a typed error, its text bounded") {
  Upstream up;
  up.options.max_response_bytes = 256 * 1024;
  up.server->enqueue("gpt-a", MockReply{.endless = true});
  std::size_t streamed = 0;
  auto r = up.client()->guarded_chat(hello(),
                                     CallOptions{.on_delta = [&](const StreamDelta& d) { streamed += d.text.size(); }});
  REQUIRE_FALSE(r.ok());  // text reached the caller, and no restart was asked for
  CHECK(r.error().category == ErrorCategory::kTransient);
  CHECK(r.error().message.find("max_response_bytes") != std::string::npos);
  CHECK(r.error().partial_content.size() <= 256 * 1024);
  CHECK(r.error().partial_content.size() > 1000);
  CHECK(streamed == r.error().partial_content.size());
  REQUIRE_FALSE(r.error().attempts.empty());
  CHECK(r.error().attempts.back().reason == StepReason::kStreamDelivered);
}

TEST_CASE("A garbage status line and an HTTP/0.9 answer are upstream faults: the fallback answers") {
  for (const char* raw : {"HTTP/1.1 abc\r\n\r\n", "hello, I am not HTTP\n"}) {
    CAPTURE(raw);
    Upstream up;
    up.options.retry.max_attempts = 1;
    for (bool stream : {false, true}) {
      up.server->enqueue("gpt-a", MockReply{.raw = std::string(raw)});
      CallOptions options;
      if (stream) options.on_delta = [](const StreamDelta&) {};
      auto r = up.client()->guarded_chat(hello(), options);
      REQUIRE(r.ok());
      CHECK(r->target == "backup");
      REQUIRE(r->attempts.size() == 2);
      CHECK(r->attempts[0].category == ErrorCategory::kConnection);  // not bad_request, not cancelled
    }
  }
}

TEST_CASE("Lying usage cannot refund, overflow or zero a budget: negative, int64-max, float, 1e999, null, absent") {
  const Price price{.input_per_mtok = 1.0, .output_per_mtok = 1.0};
  struct Case {
    const char* name;
    std::optional<std::string> usage;
    bool omit;
    Provider provider;
  };
  const Case cases[] = {
      {"anthropic negative", R"({"input_tokens": -1000000000, "output_tokens": -5})", false, Provider::kAnthropic},
      {"openai negative", R"({"prompt_tokens": -100000, "completion_tokens": 3, "total_tokens": -99997})", false,
       Provider::kOpenAI},
      {"int64 max", R"({"prompt_tokens": 9223372036854775807, "completion_tokens": 9223372036854775807})", false,
       Provider::kOpenAI},
      {"floats", R"({"prompt_tokens": 12.5, "completion_tokens": 3.0, "total_tokens": 0})", false, Provider::kOpenAI},
      {"1e999", R"({"prompt_tokens": 1e999, "completion_tokens": 4})", false, Provider::kOpenAI},
      {"null", "null", false, Provider::kOpenAI},
      {"absent", std::nullopt, true, Provider::kAnthropic},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Upstream up;
    up.options.targets = {up.target("only", "gpt-a")};
    up.options.targets[0].provider = c.provider;
    up.options.targets[0].price = price;
    up.options.budgets = {Budget{.usd = 1.0}};
    up.server->enqueue("gpt-a", MockReply{.usage = c.usage, .omit_usage = c.omit});
    auto client = up.client();
    auto r = client->guarded_chat(hello());
    REQUIRE(r.ok());  // a billed reply is never lost over its usage
    const Usage& u = r->usage;
    CHECK(u.prompt_tokens >= 0);
    CHECK(u.completion_tokens >= 0);
    CHECK(u.total_tokens >= u.prompt_tokens + u.completion_tokens);
    const auto state = client->budgets().at(0);
    CHECK(state.spent_usd >= 0);
    CHECK(state.spent_tokens >= 0);
    CHECK(state.reserved_usd == doctest::Approx(0.0));
    const auto usage = client->usage();
    CHECK(usage.total.cost_usd + usage.total.estimated_cost_usd >= 0);
  }
}

TEST_CASE("Every request the upstream served is in the ledger: cancelled in flight, cut mid-stream, failed, answered") {
  Upstream up;
  up.options.retry.max_attempts = 1;
  up.options.targets = {up.target("only", "gpt-a")};
  auto client = up.client();
  const CallOptions streaming{.on_delta = [](const StreamDelta&) {}};
  // Cancelled in flight, one at a time so that each hang meets its own call.
  constexpr int kCancelled = 8;
  for (int i = 0; i < kCancelled; ++i) {
    up.server->enqueue("gpt-a", MockReply{.hang = true});
    CancellationToken token;
    std::promise<Result<ChatResponse>> done;
    CallOptions options = streaming;
    options.cancellation = token;
    client->guarded_chat_async(hello(), options, [&done](Result<ChatResponse> r) { done.set_value(std::move(r)); });
    const auto seen = static_cast<std::uint64_t>(i);
    for (int spin = 0; spin < 2000 && up.server->stats().requests == seen; ++spin) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    token.cancel();
    CHECK(done.get_future().get().error().category == ErrorCategory::kCancelled);
  }
  // Cut after text, failed and answered, concurrently.
  constexpr int kOthers = 24;
  for (int i = 0; i < kOthers; ++i) {
    switch (i % 3) {
      case 0:
        up.server->enqueue("gpt-a", MockReply{.truncate_after_events = 3});
        break;
      case 1:
        up.server->enqueue("gpt-a", MockReply{.status = 500, .body = "{}"});
        break;
      default:
        up.server->enqueue("gpt-a", MockReply{});
        break;
    }
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kOthers; ++i) threads.emplace_back([&] { (void)client->guarded_chat(hello(), streaming); });
  for (auto& t : threads) t.join();
  const auto usage = client->usage();
  CHECK(up.server->stats().requests == kCancelled + kOthers);
  CHECK(usage.total.attempts == static_cast<std::int64_t>(up.server->stats().requests));
  CHECK(usage.total.failures_by_category[static_cast<std::size_t>(ErrorCategory::kCancelled)] == kCancelled);
  CHECK(usage.total.estimated_completion_tokens > 0);  // the cut streams' text, estimated
}

// An agent's stream: the text since the last restart signal is what the agent keeps.
struct AgentStream {
  std::string kept;
  int restarts = 0;
  CallOptions options() {
    return CallOptions{.on_delta = [this](const StreamDelta& d) {
      if (d.kind == StreamDelta::Kind::kRestart) {
        ++restarts;
        kept.clear();
      } else if (d.kind == StreamDelta::Kind::kText) {
        kept.append(d.text);
      }
    }};
  }
};

TEST_CASE("With restarts on, a stream cut, stalled or malformed after text ends with the backup's complete answer") {
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "wwww ";  // about 40 tokens, an event each
  struct Case {
    const char* name;
    MockReply primary;
  };
  const Case cases[] = {
      {"cut after 40 tokens", MockReply{.content = long_text, .truncate_after_events = 6}},
      {"stall after 20 tokens", MockReply{.content = long_text, .stall_after_events = 21}},
      {"malformed chunk mid-stream",
       MockReply{.headers = {{"content-type", "text/event-stream"}},
                 .body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial answer\"}}]}\n\n"
                         "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more\"}\n\n"}},
  };
  for (const Case& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    Upstream up;
    up.options.retry.max_attempts = 3;
    up.options.timeouts.idle = milliseconds(300);
    up.options.restart_streams_on_failure = true;
    up.server->enqueue("gpt-a", c.primary);
    AgentStream agent;
    auto r = up.client()->guarded_chat(hello(), agent.options());
    REQUIRE(r.ok());
    CHECK(r->target == "backup");
    CHECK(agent.restarts == 1);
    CHECK(agent.kept == r->content);  // no duplicate text: exactly the backup's answer
    CHECK(r->content.find("gpt-b") != std::string::npos);
    REQUIRE(r->attempts.size() == 2);
    CHECK(r->attempts[0].next == NextStep::kNextTarget);
    CHECK(r->attempts[0].reason == StepReason::kBrokenStream);
    CHECK(up.requests_for("gpt-a") == 1);
    // The backup got the caller's request, never the partial text as a prefill.
    const auto requests = up.server->recent_requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].body.find("\"assistant\"") == std::string::npos);
    CHECK(requests[1].body.find("wwww") == std::string::npos);
    CHECK(requests[1].body.find("partial answer") == std::string::npos);
  }
}

TEST_CASE("With restarts on, a cut stream restarts on a backup that rejects prefills with its complete answer") {
  Upstream up;
  up.options.restart_streams_on_failure = true;
  Target backup = up.target("backup", "claude-b");
  backup.provider = Provider::kAnthropic;
  up.options.targets[1] = backup;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "wwww ";
  up.server->enqueue("gpt-a", MockReply{.content = text, .truncate_after_events = 6});
  // The backup answers the caller's own request, and 400s one that ends on the assistant's partial text.
  up.server->enqueue("claude-b", MockReply{.reject_prefill = true});
  AgentStream agent;
  auto r = up.client()->guarded_chat(hello(), agent.options());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  CHECK(r->model == "claude-b");
  CHECK(agent.restarts == 1);
  CHECK(agent.kept == r->content);
  CHECK(r->content.find("claude-b") != std::string::npos);
  CHECK(up.requests_for("claude-b") == 1);
}

TEST_CASE("Without restarts a stream broken after text keeps the safe default: partial_content, no fallback") {
  Upstream up;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "wwww ";
  up.server->enqueue("gpt-a", MockReply{.content = text, .truncate_after_events = 6});
  AgentStream agent;
  auto r = up.client()->guarded_chat(hello(), agent.options());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().partial_content == agent.kept);
  CHECK_FALSE(agent.kept.empty());
  CHECK(up.requests_for("gpt-b") == 0);
  // The hint speaks of the stream, not of base_url, DNS or TLS.
  CHECK(r.error().hint.find("stream broke") != std::string::npos);
  CHECK(r.error().hint.find("DNS") == std::string::npos);
}

}  // namespace
}  // namespace llmguard
