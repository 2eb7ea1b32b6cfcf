// Streaming guarded_chat over loopback against the mock: deltas, usage,
// mid-stream errors, truncation, first-token timeouts and restarts.
#include "stream.h"

#include <doctest/doctest.h>

#include "llmguard/client.h"
#include "mock_server.h"
#include "providers/wire_api.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

struct Fixture {
  std::unique_ptr<MockServer> server = std::move(MockServer::start({}).value());
  std::unique_ptr<Client> client;
  std::string streamed;
  int restarts = 0;
  std::vector<std::string> tool_names;

  explicit Fixture(std::vector<Provider> providers = {Provider::kOpenAI}, milliseconds ttft = milliseconds(60000)) {
    ClientOptions o;
    int n = 0;
    for (Provider p : providers) {
      const std::string name = "t" + std::to_string(n++);
      o.targets.push_back({.name = name, .provider = p, .base_url = server->base_url(), .model = name});
    }
    o.retry.base_delay = milliseconds(1);
    o.retry.max_delay = milliseconds(2);
    o.timeouts.ttft = ttft;
    client = std::move(Client::create(std::move(o)).value());
  }

  Result<ChatResponse> chat(bool restart = false, std::string text = "stream me please") {
    ChatRequest r;
    r.messages.push_back(Message::user(std::move(text)));
    CallOptions options;
    options.restart_stream_on_failure = restart;
    options.on_delta = [this](const StreamDelta& d) {
      switch (d.kind) {
        case StreamDelta::Kind::kText:
          streamed.append(d.text);
          break;
        case StreamDelta::Kind::kRestart:
          ++restarts;
          streamed.clear();
          break;
        case StreamDelta::Kind::kToolCall:
          if (!d.tool_name.empty()) tool_names.emplace_back(d.tool_name);
          break;
      }
    };
    return client->guarded_chat(r, options);
  }
};

TEST_CASE("OpenAI stream: deltas add up to the content and usage is requested and exact") {
  Fixture f;
  auto r = f.chat();
  REQUIRE(r.ok());
  CHECK(r->content == "Hello from t0. You said: stream me please");
  CHECK(f.streamed == r->content);
  CHECK(r->finish_reason == "stop");
  CHECK_FALSE(r->usage.estimated);
  CHECK(r->usage.completion_tokens == static_cast<std::int64_t>(f.server->stats().completion_tokens));
  CHECK(f.server->recent_requests().at(0).body.find(R"("stream_options":{"include_usage":true})") != std::string::npos);
}

TEST_CASE("Anthropic stream: text deltas, stop reason and usage from message events") {
  Fixture f({Provider::kAnthropic});
  auto r = f.chat();
  REQUIRE(r.ok());
  CHECK(f.streamed == r->content);
  CHECK(r->content.starts_with("Hello from t0."));
  CHECK(r->finish_reason == "end_turn");
  auto stats = f.server->stats();
  CHECK(r->usage.prompt_tokens == static_cast<std::int64_t>(stats.prompt_tokens));
  CHECK(r->usage.completion_tokens == static_cast<std::int64_t>(stats.completion_tokens));
}

TEST_CASE("A stream cut before any delta is retried invisibly") {
  Fixture f;
  f.server->enqueue("*", MockReply{.truncate_after_events = 0});
  auto r = f.chat();
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kConnection);  // chunked body cut: curl sees a broken transfer
  CHECK(f.streamed == r->content);
  CHECK(f.restarts == 0);
}

TEST_CASE("A stream cut after deltas fails with the partial text and is not resent") {
  Fixture f({Provider::kOpenAI, Provider::kOpenAI});
  f.server->enqueue("*", MockReply{.truncate_after_events = 3});
  auto r = f.chat();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kConnection);
  CHECK(r.error().partial_content == "Hello from ");
  CHECK(f.streamed == "Hello from ");
  CHECK(f.server->stats().requests == 1);
}

TEST_CASE("A stream with a finish reason that closes cleanly without [DONE] is complete (OpenAI)") {
  Fixture f;
  const std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"all \"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"of it\"},\"finish_reason\":null}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n";
  f.server->enqueue("*", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE(r.ok());
  CHECK(r->content == "all of it");
  CHECK(r->finish_reason == "stop");
  CHECK(r->usage.completion_tokens == 3);
  CHECK_FALSE(r->usage.estimated);
  CHECK(f.streamed == "all of it");
}

TEST_CASE("An Anthropic stream with its stop_reason that closes without message_stop is complete") {
  Fixture f({Provider::kAnthropic});
  const std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"t0\","
      "\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
      "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"text_delta\",\"text\":\"done\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
      "\"usage\":{\"output_tokens\":2}}\n\n";
  f.server->enqueue("*", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE(r.ok());
  CHECK(r->content == "done");
  CHECK(r->finish_reason == "end_turn");
  CHECK(r->usage.completion_tokens == 2);
}

TEST_CASE("A finish reason in an event the stream never finished is no finish reason: truncated") {
  Fixture f;
  const std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n";  // no blank line: never
                                                                                        // dispatched
  f.server->enqueue("*", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kTransient);
  CHECK(r.error().partial_content == "cut");
}

TEST_CASE("A stream that ends cleanly before any finish reason is a transient failure (truncated)") {
  Fixture f;
  const std::string sse = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"}}]}\n\n";
  f.server->enqueue("*", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kTransient);
  CHECK(r.error().message.find("finish reason") != std::string::npos);
  CHECK(r.error().partial_content == "half");
}

TEST_CASE("With restart_stream_on_failure the caller is told to discard, then gets a full reply") {
  Fixture f;
  f.server->enqueue("*", MockReply{.truncate_after_events = 3});
  auto r = f.chat(/*restart=*/true);
  REQUIRE(r.ok());
  CHECK(f.restarts == 1);
  CHECK(f.streamed == r->content);
  CHECK(r->attempts.size() == 2);
}

TEST_CASE("An Anthropic error event mid-stream is classified like any error") {
  Fixture f({Provider::kAnthropic, Provider::kOpenAI});
  const std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"t0\","
      "\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
      "event: error\ndata: "
      "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
  f.server->enqueue("t0", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE(r.ok());  // overloaded before any delta: retried on the same target
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTransient);
  CHECK(r->attempts[0].http_status == 200);
}

TEST_CASE("An OpenAI error chunk mid-stream ends the attempt with its category") {
  Fixture f({Provider::kOpenAI, Provider::kAnthropic});
  const std::string sse =
      "data: {\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
      "\"code\":\"insufficient_quota\"}}\n\n";
  f.server->enqueue("t0", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE(r.ok());
  CHECK(r->target == "t1");
  CHECK(r->attempts[0].category == ErrorCategory::kQuotaExhausted);
}

TEST_CASE("A non-2xx reply to a streaming request is classified from its JSON body") {
  Fixture f({Provider::kOpenAI, Provider::kOpenAI});
  f.server->enqueue(
      "t0", MockReply{.status = 401,
                      .body = R"({"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}})"});
  auto r = f.chat();
  REQUIRE(r.ok());
  CHECK(r->target == "t1");
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[0].http_status == 401);
}

TEST_CASE("No first token in time: the attempt times out and the retry answers") {
  Fixture f({Provider::kOpenAI}, milliseconds(100));
  // The headers come at once, the first event only after 5 s: a slow
  // provider, not a silent route, so the same target is tried again.
  f.server->enqueue("*", MockReply{.drip = milliseconds(5000)});
  auto r = f.chat();
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTimeout);
  CHECK(f.streamed == r->content);
}

TEST_CASE("A stream without usage gets an estimate, marked as such") {
  Fixture f;
  const std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"twelve bytes\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
  f.server->enqueue("*", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE(r.ok());
  CHECK(r->content == "twelve bytes");
  CHECK(r->usage.estimated);
  CHECK(r->usage.completion_tokens == 3);
  CHECK(r->usage.prompt_tokens > 0);
}

TEST_CASE("Tool-call fragments stream with the call's name first and accumulate") {
  Fixture f;
  const std::string sse =
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
      "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n"
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":"
      "\"}}]}}]}\n\n"
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Oslo\\\"}"
      "\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
  f.server->enqueue("*", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE(r.ok());
  REQUIRE(r->tool_calls.size() == 1);
  CHECK(r->tool_calls[0].id == "call_1");
  CHECK(r->tool_calls[0].name == "get_weather");
  CHECK(r->tool_calls[0].arguments_json == R"({"city":"Oslo"})");
  CHECK(f.tool_names == std::vector<std::string>{"get_weather"});
  CHECK(r->finish_reason == "tool_calls");
}

// Hostile usage, streamed: the wire API's decoder is fed the events' bytes directly.
struct Streamed {
  ChatResponse response;
  internal::ReportedUsage reported;
};

Streamed stream_events(Provider provider, const std::vector<std::string>& data) {
  auto decoder = internal::wire_api(provider).stream_decoder();
  for (const std::string& d : data) {
    std::string event;  // one data line per line of `d`: SSE joins them with '\n' again
    for (std::size_t at = 0; at <= d.size();) {
      const std::size_t end = std::min(d.find('\n', at), d.size());
      event += "data: " + d.substr(at, end - at) + "\n";
      at = end + 1;
    }
    auto error = decoder->feed(event + "\n", nullptr, 200, {});
    REQUIRE_FALSE(error.has_value());
  }
  Streamed s;
  auto r = decoder->finish(200, &s.reported);
  REQUIRE(r.ok());
  CHECK(r->content == "twelve bytes");
  CHECK(r->finish == FinishReason::kStop);  // "stop" and "end_turn" alike
  s.response = std::move(*r);
  return s;
}

// The events of a stream saying "twelve bytes" with `usage` (a JSON object
// member, or "" for none) where each provider puts it.
std::vector<std::string> openai_events(const std::string& usage) {
  std::vector<std::string> events = {R"({"choices":[{"index":0,"delta":{"content":"twelve bytes"}}],"usage":null})",
                                     R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})"};
  if (!usage.empty()) events.push_back(R"({"choices":[],)" + usage + "}");
  events.emplace_back("[DONE]");
  return events;
}

std::vector<std::string> anthropic_events(const std::string& start_usage, const std::string& delta_usage) {
  return {R"({"type":"message_start","message":{"id":"msg_1","model":"m")" + start_usage + "}}",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"twelve bytes"}})",
          R"({"type":"message_delta","delta":{"stop_reason":"end_turn"})" + delta_usage + "}",
          R"({"type":"message_stop"})"};
}

// One OpenAI chunk fed alone to a fresh decoder: the error it ends with, if any, and the text it gave.
std::pair<std::optional<Error>, std::string> one_openai_chunk(const std::string& data) {
  auto decoder = internal::wire_api(Provider::kOpenAI).stream_decoder();
  std::string text;
  auto error = decoder->feed("data: " + data + "\n\n",
                             [&](const StreamDelta& d) {
                               if (d.kind == StreamDelta::Kind::kText) text.append(d.text);
                             },
                             200, {});
  return {std::move(error), std::move(text)};
}

TEST_CASE("OpenAI chunks that are not one whole JSON object fail as malformed and give no text") {
  const std::string whole = R"({"id":"c1","choices":[{"index":0,"delta":{"content":"hi"}}],"obfuscation":"x"})";
  CHECK(one_openai_chunk(whole).second == "hi");
  for (const std::string& bad : std::vector<std::string>{
           whole.substr(0, whole.size() - 1),                                 // the last brace missing
           whole.substr(0, whole.size() - 6),                                 // cut inside a string
           whole + "}",                                                       // one brace too many
           whole + R"({"choices":[]})",                                       // two objects in one event
           R"({"choices":[{"index":0,"delta":{"content":"hi"}}],"x":[1,2})",  // an array left open
           R"({"choices":[{"index":0,"delta":{"content":"hi"}}] "x":1})",     // a comma missing
           R"([{"choices":[]}])",                                             // not an object
           R"("just a string")",
       }) {
    CAPTURE(bad);
    auto [error, text] = one_openai_chunk(bad);
    REQUIRE(error.has_value());
    CHECK(error->category == ErrorCategory::kTransient);
    CHECK(text.empty());  // nothing from a chunk that did not prove whole
  }
}

TEST_CASE("OpenAI chunks: the first choice only, escapes undone, odd member types passed over") {
  auto decoder = internal::wire_api(Provider::kOpenAI).stream_decoder();
  std::string text;
  auto feed = [&](const std::string& data) {
    return decoder->feed("data: " + data + "\n\n",
                         [&](const StreamDelta& d) {
                           if (d.kind == StreamDelta::Kind::kText) text.append(d.text);
                         },
                         200, {});
  };
  CHECK_FALSE(feed(R"({"id":"chatcmpl-1","model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant",)"
                   R"("content":"caf\u00e9 \"q\"\n"}},{"index":1,"delta":{"content":"other choice"}}]})"));
  CHECK_FALSE(feed(R"({"choices":"not a list","usage":null})"));
  CHECK_FALSE(feed(R"({"choices":[{"index":0,"delta":"not an object"}]})"));
  CHECK_FALSE(feed(R"({"choices":[{"index":0,"delta":{"content":null,"refusal":"no"},"finish_reason":"stop"}]})"));
  CHECK_FALSE(feed(R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}})"));
  CHECK_FALSE(feed("[DONE]"));
  internal::ReportedUsage reported;
  auto r = decoder->finish(200, &reported);
  REQUIRE(r.ok());
  CHECK(text == "caf\xc3\xa9 \"q\"\n");
  CHECK(r->content == text);
  CHECK(r->refusal == "no");
  CHECK(r->id == "chatcmpl-1");
  CHECK(r->model == "gpt-x");
  CHECK(r->finish == FinishReason::kStop);
  CHECK(r->usage.prompt_tokens == 7);
  CHECK(r->usage.completion_tokens == 3);
  CHECK_FALSE(r->usage.estimated);
}

TEST_CASE("Hostile usage in streams: negative counts are reported as such and never accounted") {
  Streamed o =
      stream_events(Provider::kOpenAI, openai_events(R"("usage":{"prompt_tokens":-5000,"completion_tokens":-7})"));
  CHECK(o.reported.prompt == internal::ReportedCount::of(-5000));
  CHECK(o.response.usage.prompt_tokens == 0);
  CHECK(o.response.usage.completion_tokens == 3);
  CHECK(o.response.usage.estimated);
  Streamed a = stream_events(
      Provider::kAnthropic,
      anthropic_events(R"(,"usage":{"input_tokens":-5000,"output_tokens":1})", R"(,"usage":{"output_tokens":-7})"));
  CHECK(a.reported.prompt == internal::ReportedCount::of(-5000));
  CHECK(a.reported.completion == internal::ReportedCount::of(-7));
  CHECK(a.response.usage.completion_tokens == 3);
  CHECK(a.response.usage.estimated);
  CHECK(internal::checked_usage(a.reported, 40, 3).prompt_tokens == 40);
}

TEST_CASE("Hostile usage in streams: int64-max counts are clamped, floats rounded up") {
  Streamed o = stream_events(
      Provider::kOpenAI, openai_events(R"("usage":{"prompt_tokens":9223372036854775807,"completion_tokens":12.5})"));
  CHECK(o.response.usage.prompt_tokens == internal::kMaxTokenCount);
  CHECK(o.response.usage.completion_tokens == 13);
  CHECK_FALSE(o.response.usage.estimated);
  Streamed a = stream_events(Provider::kAnthropic, anthropic_events(R"(,"usage":{"input_tokens":9223372036854775807,)"
                                                                    R"("cache_read_input_tokens":9223372036854775807})",
                                                                    R"(,"usage":{"output_tokens":12.0})"));
  CHECK(a.response.usage.prompt_tokens == internal::kMaxTokenCount);
  CHECK(a.response.usage.completion_tokens == 12);
  CHECK(a.response.usage.total_tokens == internal::kMaxTokenCount + 12);
  CHECK_FALSE(a.response.usage.estimated);
}

TEST_CASE("Hostile usage in streams: an out-of-range number loses neither the event nor the reply") {
  Streamed o =
      stream_events(Provider::kOpenAI, openai_events(R"("usage":{"prompt_tokens":1e999,"completion_tokens":3})"));
  CHECK(o.reported.prompt == internal::ReportedCount::invalid());
  CHECK(o.response.usage.completion_tokens == 3);
  CHECK(o.response.usage.estimated);
  Streamed a = stream_events(Provider::kAnthropic,
                             anthropic_events(R"(,"usage":{"input_tokens":123456789012345678901234567890})",
                                              R"(,"usage":{"output_tokens":1e999})"));
  CHECK(a.reported.prompt == internal::ReportedCount::invalid());
  CHECK(a.reported.completion == internal::ReportedCount::invalid());
  CHECK(a.response.usage.completion_tokens == 3);
  CHECK(a.response.usage.estimated);
}

TEST_CASE("Hostile usage in streams: inconsistent totals and parts are made consistent") {
  Streamed o = stream_events(Provider::kOpenAI, openai_events(R"("usage":{"prompt_tokens":100,"completion_tokens":20,
      "total_tokens":0,"prompt_tokens_details":{"cached_tokens":5000},
      "completion_tokens_details":{"reasoning_tokens":900}})"));
  CHECK(o.response.usage.total_tokens == 120);
  CHECK(o.response.usage.cached_tokens == 100);
  CHECK(o.response.usage.reasoning_tokens == 20);
  CHECK_FALSE(o.response.usage.estimated);
}

TEST_CASE("A stream without usage, or with only message_start's running count, is estimated") {
  Streamed o = stream_events(Provider::kOpenAI, openai_events(""));
  CHECK_FALSE(o.reported.reported);
  CHECK(o.response.usage.estimated);
  CHECK(o.response.usage.completion_tokens == 3);
  Streamed a = stream_events(Provider::kAnthropic, anthropic_events("", ""));
  CHECK_FALSE(a.reported.reported);
  CHECK(a.response.usage.estimated);
  // message_start's output_tokens (1) is not the bill; without message_delta's the completion is estimated.
  a = stream_events(Provider::kAnthropic, anthropic_events(R"(,"usage":{"input_tokens":25,"output_tokens":1})", ""));
  CHECK(a.reported.reported);
  CHECK(a.reported.prompt == internal::ReportedCount::of(25));
  CHECK_FALSE(a.reported.completion.present());
  CHECK(a.response.usage.prompt_tokens == 25);
  CHECK(a.response.usage.completion_tokens == 3);
  CHECK(a.response.usage.estimated);
  // message_delta's counts replace message_start's.
  a = stream_events(Provider::kAnthropic, anthropic_events(R"(,"usage":{"input_tokens":25,"output_tokens":1})",
                                                           R"(,"usage":{"input_tokens":30,"output_tokens":9})"));
  CHECK(a.response.usage.prompt_tokens == 30);
  CHECK(a.response.usage.completion_tokens == 9);
  CHECK_FALSE(a.response.usage.estimated);
}

TEST_CASE("Over HTTP, a stream whose usage says -5 prompt tokens is accounted as an estimate") {
  Fixture f;
  const std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"twelve bytes\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";
  f.server->enqueue("*", MockReply{.headers = {{"content-type", "text/event-stream"}}, .body = sse});
  auto r = f.chat();
  REQUIRE(r.ok());
  CHECK(r->usage.prompt_tokens >= 0);
  CHECK(r->usage.estimated);
  CHECK(f.client->usage().total.prompt_tokens >= 0);
}

}  // namespace
}  // namespace llmguard
