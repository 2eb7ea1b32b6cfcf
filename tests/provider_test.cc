// The native provider APIs end to end: the real libcurl transport over
// loopback to the mock speaking Gemini (Google AI Studio and Vertex AI),
// with the mock's own replays of each API's real error bodies.
#include <doctest/doctest.h>

#include <string>

#include "llmguard/client.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using mock::MockOptions;
using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

std::unique_ptr<MockServer> start_mock(MockOptions o = {}) {
  auto s = MockServer::start(std::move(o));
  REQUIRE(s.ok());
  return std::move(*s);
}

std::unique_ptr<Client> make_client(std::vector<Target> targets) {
  ClientOptions o;
  o.targets = std::move(targets);
  o.retry.max_attempts = 2;
  o.retry.base_delay = milliseconds(1);
  o.retry.max_delay = milliseconds(2);
  o.retry.max_retry_after = milliseconds(500);
  auto c = Client::create(std::move(o));
  REQUIRE(c.ok());
  return std::move(*c);
}

Target gemini_at(const MockServer& server, std::string name = "gemini") {
  return {.name = std::move(name),
          .provider = Provider::kGemini,
          .base_url = server.base_url(),
          .model = "gemini-2.5-flash",
          .api_key = "AIzaSyMockKey0123456789"};
}

Target openai_at(const MockServer& server, std::string name = "openai") {
  return {
      .name = std::move(name), .base_url = server.base_url(), .model = "gpt-a", .api_key = "sk-mock-key-0123456789"};
}

ChatRequest hello(std::string text = "hello") {
  ChatRequest r;
  r.messages = {Message::system("be brief"), Message::user(std::move(text))};
  return r;
}

TEST_CASE("Gemini plain: generateContent with the key in x-goog-api-key, the reply and its exact usage") {
  auto server = start_mock();
  auto client = make_client({gemini_at(*server)});
  auto r = client->guarded_chat(hello("hi there"));
  REQUIRE(r.ok());
  CHECK(r->content == "Hello from gemini-2.5-flash. You said: hi there");
  CHECK(r->finish_reason == "STOP");
  CHECK(r->finish == FinishReason::kStop);
  const auto stats = server->stats();
  CHECK(r->usage.prompt_tokens == static_cast<std::int64_t>(stats.prompt_tokens));
  CHECK(r->usage.completion_tokens == static_cast<std::int64_t>(stats.completion_tokens));
  CHECK_FALSE(r->usage.estimated);
  const auto recorded = server->recent_requests();
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].path == "/v1/models/gemini-2.5-flash:generateContent");
  CHECK(*find_header(recorded[0].headers, "x-goog-api-key") == "AIzaSyMockKey0123456789");
  CHECK(recorded[0].path.find("AIza") == std::string::npos);
  CHECK(find_header(recorded[0].headers, "authorization") == nullptr);
}

TEST_CASE("Gemini streamed: streamGenerateContent?alt=sse, CRLF events, deltas and the final usage") {
  auto server = start_mock();
  auto client = make_client({gemini_at(*server)});
  std::string deltas;
  CallOptions call;
  call.on_delta = [&](const StreamDelta& d) { deltas += d.text; };
  auto r = client->guarded_chat(hello("stream it"), call);
  REQUIRE(r.ok());
  CHECK(deltas == "Hello from gemini-2.5-flash. You said: stream it");
  CHECK(r->content == deltas);
  CHECK(r->finish == FinishReason::kStop);
  CHECK(r->usage.completion_tokens == static_cast<std::int64_t>(server->stats().completion_tokens));
  CHECK_FALSE(r->usage.estimated);
  CHECK(server->recent_requests().at(0).path == "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
}

TEST_CASE("Vertex AI: a project's URL and a bearer token") {
  auto server = start_mock({.require_key = "ya29.mock-token-0123456789"});
  auto client = make_client({{.name = "vertex",
                              .provider = Provider::kVertex,
                              .base_url = server->base_url(),
                              .model = "gemini-2.5-pro",
                              .api_key = "ya29.mock-token-0123456789",
                              .project = "acme-ml",
                              .location = "europe-west4"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->content == "Hello from gemini-2.5-pro. You said: hello");
  const auto recorded = server->recent_requests();
  CHECK(recorded.at(0).path ==
        "/v1/projects/acme-ml/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent");
  CHECK(*find_header(recorded.at(0).headers, "authorization") == "Bearer ya29.mock-token-0123456789");
}

// One server that answers every request with one of the mock's real error replays.
std::unique_ptr<MockServer> failing(mock::FaultMix faults) { return start_mock({.faults = faults}); }

TEST_CASE("Gemini errors: each real error body gets its category and its action") {
  auto backup = start_mock();
  struct Case {
    const char* name;
    mock::FaultMix faults;
    ErrorCategory category;
    int status;
    int attempts_on_gemini;  // 2: retried; 1: moved on at once
    StepReason reason;
  };
  const Case cases[] = {
      // A per-minute quota (QuotaFailure ...PerMinute...) is a rate limit even though its text says
      // "exceeded your current quota"; RetryInfo's 1 s is above max_retry_after, so it falls back at once.
      {"per-minute", {.rate_limit = 1}, ErrorCategory::kRateLimit, 429, 1, StepReason::kDelayAboveCap},
      {"per-day", {.quota = 1}, ErrorCategory::kQuotaExhausted, 429, 1, StepReason::kCategoryDefault},
      {"overloaded", {.overloaded = 1}, ErrorCategory::kTransient, 503, 2, StepReason::kAttemptsExhausted},
      {"internal", {.server_error = 1}, ErrorCategory::kTransient, 500, 2, StepReason::kAttemptsExhausted},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    auto server = failing(c.faults);
    auto client = make_client({gemini_at(*server), openai_at(*backup)});
    auto r = client->guarded_chat(hello());
    REQUIRE(r.ok());
    CHECK(r->target == "openai");
    REQUIRE(r->attempts.size() == static_cast<std::size_t>(c.attempts_on_gemini + 1));
    const Attempt& last_gemini = r->attempts[c.attempts_on_gemini - 1];
    CHECK(last_gemini.category == c.category);
    CHECK(last_gemini.http_status == c.status);
    CHECK(last_gemini.next == NextStep::kNextTarget);
    CHECK(last_gemini.reason == c.reason);
  }
}

TEST_CASE("Gemini: a wrong key (400 API_KEY_INVALID) is auth, and the chain moves on") {
  auto server = start_mock({.require_key = "AIzaSyTheRightKey000000"});
  auto backup = start_mock();
  auto client = make_client({gemini_at(*server), openai_at(*backup)});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[0].http_status == 400);
}

TEST_CASE("Gemini: a 200 with a safety verdict fails as content_filter, without trying elsewhere") {
  auto server = start_mock();
  auto backup = start_mock();
  server->enqueue("*", MockReply{.body = R"({"candidates":[{"content":{"parts":[{"text":"I can"}],"role":"model"},
      "finishReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH",
      "blocked":true}]}],"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash"})"});
  auto client = make_client({gemini_at(*server), openai_at(*backup)});
  auto r = client->guarded_chat(hello());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kContentFilter);
  CHECK(r.error().provider_code == "SAFETY");
  CHECK(r.error().http_status == 200);
  CHECK(backup->stats().requests == 0);
}

TEST_CASE("Gemini streamed: an error event after the first delta is a typed error with the partial text") {
  auto server = start_mock();
  server->enqueue("*", MockReply{.content = "partial answer", .echo_key = true});
  auto client = make_client({gemini_at(*server)});
  std::string deltas;
  CallOptions call;
  call.on_delta = [&](const StreamDelta& d) { deltas += d.text; };
  auto r = client->guarded_chat(hello(), call);
  REQUIRE_FALSE(r.ok());
  CHECK(deltas == "partial answer");
  CHECK(r.error().partial_content == "partial answer");
  CHECK(r.error().message.find("AIzaSyMockKey0123456789") == std::string::npos);  // the echoed key is masked
}

TEST_CASE("A mixed chain falls through OpenAI and Gemini in order, each with its own category") {
  auto openai = start_mock({.require_key = "sk-the-right-key-000000"});
  auto gemini = failing({.quota = 1});
  auto anthropic = start_mock();
  auto client = make_client({openai_at(*openai),
                             gemini_at(*gemini),
                             {.name = "claude",
                              .provider = Provider::kAnthropic,
                              .base_url = anthropic->base_url(),
                              .model = "claude-x",
                              .api_key = "ant-key-0123456789"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "claude");
  REQUIRE(r->attempts.size() == 3);
  CHECK(r->attempts[0].target == "openai");
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[1].target == "gemini");
  CHECK(r->attempts[1].category == ErrorCategory::kQuotaExhausted);
  CHECK(r->attempts[2].target == "claude");
  CHECK_FALSE(r->attempts[2].category.has_value());
}

}  // namespace
}  // namespace llmguard
