// Bedrock's Converse API: the body and reply readers, SigV4 per attempt (and
// a Bedrock API key), the ConverseStream decoder over AWS event-stream
// frames, and Bedrock's typed exceptions, end to end through the real libcurl
// transport to the mock, plus a deterministic signature under a fake clock.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "fakes.h"
#include "llmguard/client.h"
#include "mock_server.h"
#include "providers/eventstream.h"
#include "providers/sigv4.h"
#include "providers/wire_api.h"

namespace llmguard {
namespace {

using mock::MockOptions;
using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

constexpr const char* kModel = "anthropic.claude-3-5-haiku-20241022-v1:0";
constexpr const char* kModelPath = "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0";
constexpr const char* kAccessKey = "AKIDEXAMPLEMOCK00001";
constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYMOCKSECRET";

// Sets (or clears, for nullptr) environment variables for one test, and puts them back.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
      if (value) setenv(name, value, 1);
      else unsetenv(name);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) setenv(name.c_str(), value->c_str(), 1);
      else unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// No AWS identity from the machine running the tests leaks in.
ScopedEnv clean_aws_env() {
  return ScopedEnv{{"AWS_ACCESS_KEY_ID", nullptr}, {"AWS_SECRET_ACCESS_KEY", nullptr},
                   {"AWS_SESSION_TOKEN", nullptr}, {"AWS_BEARER_TOKEN_BEDROCK", nullptr},
                   {"AWS_REGION", nullptr},        {"AWS_DEFAULT_REGION", nullptr}};
}

std::unique_ptr<MockServer> start_mock(MockOptions o = {}) {
  auto s = MockServer::start(std::move(o));
  REQUIRE(s.ok());
  return std::move(*s);
}

ClientOptions options_for(std::vector<Target> targets) {
  ClientOptions o;
  o.targets = std::move(targets);
  o.retry.max_attempts = 2;
  o.retry.base_delay = milliseconds(1);
  o.retry.max_delay = milliseconds(2);
  o.retry.max_retry_after = milliseconds(500);
  return o;
}

std::unique_ptr<Client> make_client(std::vector<Target> targets) {
  auto c = Client::create(options_for(std::move(targets)));
  REQUIRE(c.ok());
  return std::move(*c);
}

// A target at the mock, with a Bedrock API key unless `key` is "" (then SigV4 from the environment).
Target bedrock_at(const MockServer& server, std::string key = "bedrock-api-key-0123456789") {
  return {.name = "bedrock",
          .provider = Provider::kBedrock,
          .base_url = server.root_url(),
          .model = kModel,
          .api_key = std::move(key),
          .region = "us-east-1"};
}

Target openai_at(const MockServer& server) {
  return {.name = "openai", .base_url = server.base_url(), .model = "gpt-a", .api_key = "sk-mock-key-0123456789"};
}

ChatRequest hello(std::string text = "hello") {
  ChatRequest r;
  r.messages = {Message::system("be brief"), Message::user(std::move(text))};
  return r;
}

std::string frame(std::string_view message_type, std::string_view type_header, std::string_view type,
                  std::string_view json) {
  const internal::aws::EventHeader headers[] = {
      {type_header, internal::aws::HeaderValue::string(type)},
      {internal::aws::kContentTypeHeader, internal::aws::HeaderValue::string("application/json")},
      {internal::aws::kMessageTypeHeader, internal::aws::HeaderValue::string(message_type)},
  };
  return *internal::aws::encode_message(headers, json);
}

std::string event(std::string_view type, std::string_view json) {
  return frame("event", internal::aws::kEventTypeHeader, type, json);
}

// A ConverseStream with text, one tool call in two fragments, and usage.
std::string tool_stream() {
  return event("messageStart", R"({"role":"assistant"})") +
         event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"Let me look."}})") +
         event("contentBlockStop", R"({"contentBlockIndex":0})") +
         event("contentBlockStart",
               R"({"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_abc","name":"weather"}}})") +
         event("contentBlockDelta", R"({"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}}})") +
         event("contentBlockDelta", R"({"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Oslo\"}"}}})") +
         event("contentBlockStop", R"({"contentBlockIndex":1})") +
         event("messageStop", R"({"stopReason":"tool_use"})") +
         event(
             "metadata",
             R"({"usage":{"inputTokens":20,"outputTokens":9,"totalTokens":41,"cacheReadInputTokens":12},"metrics":{"latencyMs":5}})");
}

TEST_CASE("Bedrock plain: converse at the URL-encoded model id, a bearer API key, the reply and its exact usage") {
  auto env = clean_aws_env();
  auto server = start_mock({.require_key = "bedrock-api-key-0123456789"});
  auto client = make_client({bedrock_at(*server)});
  auto r = client->guarded_chat(hello("hi there"));
  REQUIRE(r.ok());
  CHECK(r->content == std::string("Hello from ") + kModel + ". You said: hi there");
  CHECK(r->finish_reason == "end_turn");
  CHECK(r->finish == FinishReason::kStop);
  const auto stats = server->stats();
  CHECK(r->usage.prompt_tokens == static_cast<std::int64_t>(stats.prompt_tokens));
  CHECK(r->usage.completion_tokens == static_cast<std::int64_t>(stats.completion_tokens));
  CHECK_FALSE(r->usage.estimated);
  const auto recorded = server->recent_requests();
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].path == std::string(kModelPath) + "/converse");
  CHECK(*find_header(recorded[0].headers, "authorization") == "Bearer bedrock-api-key-0123456789");
  CHECK(find_header(recorded[0].headers, "x-amz-date") == nullptr);
  CHECK(recorded[0].body.find(R"("system":[{"text":"be brief"}])") != std::string::npos);
  CHECK(recorded[0].body.find(R"("messages":[{"role":"user","content":[{"text":"hi there"}]}])") != std::string::npos);
}

TEST_CASE("Bedrock: AWS_BEARER_TOKEN_BEDROCK is the API key when the target has none") {
  auto env = clean_aws_env();
  ScopedEnv token{{"AWS_BEARER_TOKEN_BEDROCK", "bedrock-env-token-0123456789"}};
  auto server = start_mock({.require_key = "bedrock-env-token-0123456789"});
  auto client = make_client({bedrock_at(*server, "")});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(*find_header(server->recent_requests().at(0).headers, "authorization") ==
        "Bearer bedrock-env-token-0123456789");
}

TEST_CASE("Bedrock: a wrong API key is auth (403 UnrecognizedClientException) and the chain moves on") {
  auto env = clean_aws_env();
  auto server = start_mock({.require_key = "the-right-key-000000"});
  auto backup = start_mock();
  auto client = make_client({bedrock_at(*server), openai_at(*backup)});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[0].http_status == 403);
}

TEST_CASE("Bedrock streamed: converse-stream, event-stream frames, deltas and the final usage") {
  auto env = clean_aws_env();
  auto server = start_mock();
  auto client = make_client({bedrock_at(*server)});
  std::string deltas;
  CallOptions call;
  call.on_delta = [&](const StreamDelta& d) { deltas += d.text; };
  auto r = client->guarded_chat(hello("stream it"), call);
  REQUIRE(r.ok());
  CHECK(deltas == std::string("Hello from ") + kModel + ". You said: stream it");
  CHECK(r->content == deltas);
  CHECK(r->finish == FinishReason::kStop);
  CHECK(r->usage.completion_tokens == static_cast<std::int64_t>(server->stats().completion_tokens));
  CHECK_FALSE(r->usage.estimated);
  CHECK(server->recent_requests().at(0).path == std::string(kModelPath) + "/converse-stream");
}

TEST_CASE("Bedrock: tool calls in a whole reply and in a stream; results go back as toolResult blocks") {
  auto env = clean_aws_env();
  auto server = start_mock();
  server->enqueue("*", MockReply{.body = R"({"output":{"message":{"role":"assistant","content":[
      {"text":"Checking."},{"toolUse":{"toolUseId":"tooluse_1","name":"weather","input":{"city":"Oslo"}}}]}},
      "stopReason":"tool_use","usage":{"inputTokens":30,"outputTokens":12,"totalTokens":42,
      "cacheReadInputTokens":100,"cacheWriteInputTokens":8}})"});
  auto client = make_client({bedrock_at(*server)});
  ChatRequest request = hello("weather in Oslo and Bergen?");
  request.tools = {{.name = "weather",
                    .description = "today's weather",
                    .parameters_json = R"({"type":"object","properties":{"city":{"type":"string"}}})"}};
  request.tool_choice = ToolChoice{.mode = ToolChoice::Mode::kRequired};
  auto r = client->guarded_chat(request);
  REQUIRE(r.ok());
  CHECK(r->content == "Checking.");
  CHECK(r->finish == FinishReason::kToolCalls);
  REQUIRE(r->tool_calls.size() == 1);
  CHECK(r->tool_calls[0].id == "tooluse_1");
  CHECK(r->tool_calls[0].arguments_json == R"({"city":"Oslo"})");
  CHECK(r->usage.prompt_tokens == 138);  // inputTokens leaves the cache reads and writes out
  CHECK(r->usage.cached_tokens == 100);
  const std::string sent = server->recent_requests().at(0).body;
  CHECK(
      sent.find(
          R"("toolConfig":{"tools":[{"toolSpec":{"name":"weather","description":"today's weather","inputSchema":{"json":{"type":"object")") !=
      std::string::npos);
  CHECK(sent.find(R"("toolChoice":{"any":{}})") != std::string::npos);

  // The answers to two parallel calls, one failed, in one user turn.
  request.messages.push_back(Message::assistant(""));
  request.messages.back().tool_calls = {{.id = "t1", .name = "weather", .arguments_json = R"({"city":"Oslo"})"},
                                        {.id = "t2", .name = "weather", .arguments_json = R"({"city":"Bergen"})"}};
  request.messages.push_back(Message::tool_result("t1", R"({"celsius":4})"));
  request.messages.push_back(Message::tool_error("t2", "service down"));
  request.tool_choice = ToolChoice{.mode = ToolChoice::Mode::kNone};
  server->enqueue("*", MockReply{.body = tool_stream()});
  std::vector<StreamDelta> tool_deltas;
  CallOptions call;
  call.on_delta = [&](const StreamDelta& d) {
    if (d.kind == StreamDelta::Kind::kToolCall) tool_deltas.push_back(d);
  };
  auto s = client->guarded_chat(request, call);
  REQUIRE(s.ok());
  const std::string second = server->recent_requests().at(1).body;
  CHECK(
      second.find(
          R"({"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"weather","input":{"city":"Oslo"}}},{"toolUse":{"toolUseId":"t2")") !=
      std::string::npos);
  CHECK(
      second.find(
          R"({"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"json":{"celsius":4}}]}},{"toolResult":{"toolUseId":"t2","content":[{"text":"service down"}],"status":"error"}}]})") !=
      std::string::npos);
  // Converse wants a toolConfig beside tool blocks and has no "none": only a tool that says no tools.
  CHECK(second.find(R"("toolConfig":{"tools":[{"toolSpec":{"name":"no_tools_this_turn")") != std::string::npos);
  CHECK(second.find(R"("toolSpec":{"name":"weather")") == std::string::npos);
  CHECK(second.find("toolChoice") == std::string::npos);
  CHECK(s->content == "Let me look.");
  REQUIRE(s->tool_calls.size() == 1);
  CHECK(s->tool_calls[0].id == "tooluse_abc");
  CHECK(s->tool_calls[0].name == "weather");
  CHECK(s->tool_calls[0].arguments_json == R"({"city":"Oslo"})");
  CHECK(s->finish == FinishReason::kToolCalls);
  CHECK(s->usage.prompt_tokens == 32);
  CHECK(s->usage.total_tokens == 41);
  REQUIRE(tool_deltas.size() == 2);
  CHECK(tool_deltas[0].tool_call_id == "tooluse_abc");
  CHECK(tool_deltas[0].tool_name == "weather");
}

TEST_CASE("Bedrock SigV4: a signed request passes the mock's verifier; a wrong secret is refused") {
  auto env = clean_aws_env();
  auto server = start_mock({.require_key = "only-for-bearer",
                            .aws = MockOptions::AwsKeys{
                                .access_key_id = kAccessKey,
                                .secret_access_key = kSecret,
                                .session_token = "FQoGZXIvYXdzEMOCKSESSION",
                            }});
  auto backup = start_mock();
  SUBCASE("the right keys and session token, plain and streamed") {
    ScopedEnv keys{{"AWS_ACCESS_KEY_ID", kAccessKey},
                   {"AWS_SECRET_ACCESS_KEY", kSecret},
                   {"AWS_SESSION_TOKEN", "FQoGZXIvYXdzEMOCKSESSION"}};
    auto client = make_client({bedrock_at(*server, "")});
    auto r = client->guarded_chat(hello());
    CAPTURE((r.ok() ? std::string() : r.error().message));
    REQUIRE(r.ok());
    CallOptions call;
    call.on_delta = [](const StreamDelta&) {};
    auto s = client->guarded_chat(hello(), call);
    REQUIRE(s.ok());
    const auto recorded = server->recent_requests();
    const std::string& auth = *find_header(recorded.at(0).headers, "authorization");
    CHECK(auth.starts_with(std::string("AWS4-HMAC-SHA256 Credential=") + kAccessKey + "/"));
    CHECK(auth.find(
              "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, ") !=
          std::string::npos);
    CHECK(*find_header(recorded.at(0).headers, "x-amz-security-token") == "FQoGZXIvYXdzEMOCKSESSION");
  }
  SUBCASE("a wrong secret: 403 InvalidSignatureException, auth, and the chain moves on") {
    ScopedEnv keys{{"AWS_ACCESS_KEY_ID", kAccessKey},
                   {"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGSECRET"},
                   {"AWS_SESSION_TOKEN", "FQoGZXIvYXdzEMOCKSESSION"}};
    auto client = make_client({bedrock_at(*server, ""), openai_at(*backup)});
    auto r = client->guarded_chat(hello());
    REQUIRE(r.ok());
    CHECK(r->target == "openai");
    REQUIRE(r->attempts.size() == 2);
    CHECK(r->attempts[0].category == ErrorCategory::kAuth);
    CHECK(r->attempts[0].http_status == 403);
  }
}

TEST_CASE("Bedrock SigV4: each attempt is signed over its body with the client clock's time") {
  auto env = clean_aws_env();
  ScopedEnv keys{{"AWS_ACCESS_KEY_ID", kAccessKey}, {"AWS_SECRET_ACCESS_KEY", kSecret}, {"AWS_REGION", "eu-west-3"}};
  testing::FakeClock clock;
  auto transport = std::make_shared<testing::FakeTransport>(clock);
  std::vector<HttpRequest> seen;
  transport->set_responder([&](const HttpRequest& request) -> std::optional<Result<HttpResponse>> {
    seen.push_back(request);
    if (seen.size() == 1) {
      return HttpResponse{.status = 503,
                          .headers = {{"x-amzn-errortype", "ServiceUnavailableException"}},
                          .body = R"({"message":"Bedrock is unable to process your request."})"};
    }
    return HttpResponse{
        .status = 200,
        .body = R"({"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn"})"};
  });
  ClientOptions o = options_for({{.name = "b", .provider = Provider::kBedrock, .model = kModel}});
  o.clock = &clock;
  o.transport = transport;
  auto client = Client::create(std::move(o));
  REQUIRE(client.ok());
  std::optional<Result<ChatResponse>> result;
  (*client)->guarded_chat_async(hello(), {}, [&](Result<ChatResponse> r) { result = std::move(r); });
  transport->run_for(std::chrono::seconds(5), [&] { return result.has_value(); });
  REQUIRE(result);
  REQUIRE(result->ok());
  REQUIRE(seen.size() == 2);
  const HttpRequest& first = seen[0];
  CHECK(first.url == std::string("https://bedrock-runtime.eu-west-3.amazonaws.com") + kModelPath + "/converse");
  CHECK(*find_header(first.headers, "x-amz-date") == "20260115T000000Z");
  CHECK(*find_header(seen[1].headers, "x-amz-date") != "");
  // The signature is sign_v4's over exactly what was sent.
  const std::string path = std::string(kModelPath) + "/converse";
  internal::aws::SignableRequest signable{.method = "POST",
                                          .host = "bedrock-runtime.eu-west-3.amazonaws.com",
                                          .path = path,
                                          .headers = {{"content-type", "application/json"}},
                                          .body = first.body};
  const std::chrono::system_clock::time_point first_time = std::chrono::sys_days{std::chrono::year{2026} / 1 / 15};
  auto expected = internal::aws::sign_v4(signable, {.access_key_id = kAccessKey, .secret_access_key = kSecret},
                                         "eu-west-3", "bedrock", absl::FromChrono(first_time));
  REQUIRE(expected.ok());
  CHECK(*find_header(first.headers, "authorization") == (*expected)[0].second);
}

TEST_CASE("Bedrock at create(): what is missing is named, never a value") {
  auto env = clean_aws_env();
  ScopedEnv keys{{"AWS_ACCESS_KEY_ID", kAccessKey}};
  Target t{.name = "b", .provider = Provider::kBedrock, .model = kModel, .region = "us-east-1"};
  auto c = Client::create(options_for({t}));
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().category == ErrorCategory::kBadRequest);
  CHECK(c.error().message.find("AWS_SECRET_ACCESS_KEY is not set") != std::string::npos);
  CHECK(c.error().message.find(kAccessKey) == std::string::npos);
  t.region.clear();
  t.api_key = "k";
  auto no_region = Client::create(options_for({t}));
  REQUIRE_FALSE(no_region.ok());
  CHECK(no_region.error().message.find("region") != std::string::npos);
}

// One server answering every request with one of the mock's Bedrock error replays.
std::unique_ptr<MockServer> failing(mock::FaultMix faults) { return start_mock({.faults = faults}); }

TEST_CASE("Bedrock errors: the mock's fault mix, each with its category and action") {
  auto env = clean_aws_env();
  auto backup = start_mock();
  struct Case {
    const char* name;
    mock::FaultMix faults;
    ErrorCategory category;
    int status;
    int attempts_on_bedrock;
  };
  const Case cases[] = {
      {"ThrottlingException", {.rate_limit = 1}, ErrorCategory::kRateLimit, 429, 2},
      {"ServiceQuotaExceededException", {.quota = 1}, ErrorCategory::kQuotaExhausted, 400, 1},
      {"ServiceUnavailableException", {.overloaded = 1}, ErrorCategory::kTransient, 503, 2},
      {"InternalServerException", {.server_error = 1}, ErrorCategory::kTransient, 500, 2},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    auto server = failing(c.faults);
    auto client = make_client({bedrock_at(*server), openai_at(*backup)});
    auto r = client->guarded_chat(hello());
    REQUIRE(r.ok());
    CHECK(r->target == "openai");
    REQUIRE(r->attempts.size() == static_cast<std::size_t>(c.attempts_on_bedrock + 1));
    const Attempt& last = r->attempts[c.attempts_on_bedrock - 1];
    CHECK(last.category == c.category);
    CHECK(last.http_status == c.status);
    CHECK(last.next == NextStep::kNextTarget);
  }
}

TEST_CASE("Bedrock errors: every exception type Converse names, by x-amzn-errortype and message") {
  auto env = clean_aws_env();
  struct Case {
    const char* type;
    int status;
    const char* message;
    ErrorCategory category;
  };
  const Case cases[] = {
      {"ThrottlingException", 429, "Too many requests, please wait before trying again.", ErrorCategory::kRateLimit},
      {"ThrottlingException", 429, "Too many tokens, please wait before trying again.", ErrorCategory::kRateLimit},
      {"ServiceQuotaExceededException", 400,
       "Your request exceeds the service quota for your account. You can view your quotas at Viewing service quotas. "
       "You can resubmit your request later.",
       ErrorCategory::kQuotaExhausted},
      {"ModelNotReadyException", 429, "Model is not ready to serve inference requests. Try again later.",
       ErrorCategory::kTransient},
      {"ValidationException", 400, "Malformed input request, please reformat your input and try again.",
       ErrorCategory::kBadRequest},
      {"ValidationException", 400, "Input is too long for requested model.", ErrorCategory::kContextOverflow},
      {"ValidationException", 400, "prompt is too long: 210000 tokens > 200000 maximum",
       ErrorCategory::kContextOverflow},
      {"AccessDeniedException", 403, "You don't have access to the model with the specified model ID.",
       ErrorCategory::kPermission},
      {"UnrecognizedClientException", 403, "The security token included in the request is invalid.",
       ErrorCategory::kAuth},
      {"ResourceNotFoundException", 404, "Model not found.", ErrorCategory::kModelNotFound},
      {"ServiceUnavailableException", 503, "Bedrock is unable to process your request.", ErrorCategory::kTransient},
      // A timeout the service reports is a 408, transient (DESIGN.md: kTimeout is the transport's own).
      {"ModelTimeoutException", 408, "Model has timed out in processing the request. Try your request again.",
       ErrorCategory::kTransient},
      {"ThrottlingException", 429, "Too many tokens per day, please wait before trying again.",
       ErrorCategory::kQuotaExhausted},
      {"ModelErrorException", 424, "The model encountered an error processing your request.",
       ErrorCategory::kTransient},
      {"InternalServerException", 500, "The system encountered an unexpected error during processing.",
       ErrorCategory::kTransient},
  };
  auto server = start_mock();
  for (const Case& c : cases) {
    auto client = make_client({bedrock_at(*server)});  // its own breaker
    const std::string type = c.type, message = c.message;
    CAPTURE(type);
    CAPTURE(message);
    server->enqueue(
        "*", MockReply{.status = c.status,
                       .headers = {{"x-amzn-errortype",
                                    std::string(c.type) + ":http://internal.amazon.com/coral/com.amazon.bedrock/"}},
                       .body = fmt::format(R"({{"message":"{}"}})", c.message)});
    server->enqueue("*", MockReply{.status = c.status,
                                   .headers = {{"x-amzn-errortype", c.type}},
                                   .body = fmt::format(R"({{"message":"{}"}})", c.message)});
    auto r = client->guarded_chat(hello());
    server->reset();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == c.category);
    CHECK(r.error().provider_type == c.type);
    CAPTURE(r.error().message);
  }
}

TEST_CASE("Bedrock: a guardrail's stop is content_filter, whole and streamed, without trying elsewhere") {
  auto env = clean_aws_env();
  auto server = start_mock();
  auto backup = start_mock();
  auto client = make_client({bedrock_at(*server), openai_at(*backup)});
  server->enqueue(
      "*",
      MockReply{
          .body =
              R"({"output":{"message":{"role":"assistant","content":[{"text":"Sorry, the model cannot answer this question."}]}},"stopReason":"guardrail_intervened","usage":{"inputTokens":8,"outputTokens":9,"totalTokens":17}})"});
  auto r = client->guarded_chat(hello());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kContentFilter);
  CHECK(r.error().provider_code == "guardrail_intervened");
  server->enqueue("*",
                  MockReply{.body = event("messageStart", R"({"role":"assistant"})") +
                                    event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"I can"}})") +
                                    event("messageStop", R"({"stopReason":"content_filtered"})")});
  CallOptions call;
  call.on_delta = [](const StreamDelta&) {};
  auto s = client->guarded_chat(hello(), call);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().category == ErrorCategory::kContentFilter);
  CHECK(s.error().partial_content == "I can");
  CHECK(backup->stats().requests == 0);
}

TEST_CASE("Bedrock streamed: exception frames are classified errors, retried before the first delta only") {
  auto env = clean_aws_env();
  struct Case {
    const char* type;
    ErrorCategory category;
  };
  const Case cases[] = {
      {"throttlingException", ErrorCategory::kRateLimit},
      {"modelStreamErrorException", ErrorCategory::kTransient},
      {"internalServerException", ErrorCategory::kTransient},
      {"serviceUnavailableException", ErrorCategory::kTransient},
      {"validationException", ErrorCategory::kContextOverflow},  // "Input is too long for requested model."
      {"modelTimeoutException", ErrorCategory::kTransient},
  };
  auto server = start_mock();
  auto client = make_client({bedrock_at(*server)});
  for (const Case& c : cases) {
    const std::string type = c.type;
    CAPTURE(type);
    server->reset();
    server->enqueue("*", MockReply{.stream_exception = c.type, .stream_exception_deltas = 1});
    std::string deltas;
    CallOptions call;
    call.on_delta = [&](const StreamDelta& d) { deltas += d.text; };
    auto r = client->guarded_chat(hello(), call);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == c.category);
    CHECK(r.error().partial_content == deltas);
    CHECK_FALSE(deltas.empty());
    CHECK(server->stats().requests == 1);  // a delta was delivered: not restarted
  }
  // Before any delta a retryable exception is retried on the same target.
  server->reset();
  server->enqueue("*", MockReply{.stream_exception = "throttlingException", .stream_exception_deltas = 0});
  CallOptions call;
  call.on_delta = [](const StreamDelta&) {};
  auto r = client->guarded_chat(hello(), call);
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kRateLimit);
}

TEST_CASE("Bedrock streamed: a CRC error before the first delta is retried; after it, a typed error") {
  auto env = clean_aws_env();
  auto server = start_mock();
  auto client = make_client({bedrock_at(*server)});
  CallOptions call;
  std::string deltas;
  call.on_delta = [&](const StreamDelta& d) { deltas += d.text; };
  server->enqueue("*", MockReply{.corrupt_crc_event = 0});
  auto r = client->guarded_chat(hello(), call);
  REQUIRE(r.ok());
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTransient);
  deltas.clear();
  server->enqueue("*", MockReply{.content = "one two three", .corrupt_crc_event = 2});
  auto s = client->guarded_chat(hello(), call);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().category == ErrorCategory::kTransient);
  CHECK(s.error().message.find("message_crc_mismatch") != std::string::npos);
  CHECK(s.error().partial_content == "one ");
  CHECK(deltas == "one ");
}

TEST_CASE("Bedrock stream decoder: the same reply whatever byte the frames are cut at") {
  const std::string bytes = tool_stream();
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    CAPTURE(cut);
    auto decoder = internal::wire_api(Provider::kBedrock).stream_decoder();
    std::string text, args;
    auto emit = [&](const StreamDelta& d) {
      if (d.kind == StreamDelta::Kind::kText) text += d.text;
      else args += d.text;
    };
    REQUIRE_FALSE(decoder->feed(std::string_view(bytes).substr(0, cut), emit, 200, {}));
    REQUIRE_FALSE(decoder->feed(std::string_view(bytes).substr(cut), emit, 200, {}));
    internal::ReportedUsage usage;
    auto r = decoder->finish(200, &usage);
    REQUIRE(r.ok());
    CHECK(text == "Let me look.");
    CHECK(args == R"({"city":"Oslo"})");
    CHECK(r->tool_calls.at(0).name == "weather");
    CHECK(r->finish == FinishReason::kToolCalls);
    CHECK(r->usage.prompt_tokens == 32);
  }
  // Cut short inside a frame: truncated, not complete.
  auto decoder = internal::wire_api(Provider::kBedrock).stream_decoder();
  REQUIRE_FALSE(decoder->feed(std::string_view(bytes).substr(0, bytes.size() - 3), nullptr, 200, {}));
  CHECK_FALSE(decoder->finish(200).ok());
}

TEST_CASE("Bedrock stream decoder: closed after messageStop without metadata is complete; before it, truncated") {
  const std::string opening = event("messageStart", R"({"role":"assistant"})") +
                              event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"Hi."}})");
  auto complete = internal::wire_api(Provider::kBedrock).stream_decoder();
  REQUIRE_FALSE(complete->feed(opening + event("messageStop", R"({"stopReason":"end_turn"})"), nullptr, 200, {}));
  auto r = complete->finish(200);
  REQUIRE(r.ok());
  CHECK(r->content == "Hi.");
  CHECK(r->finish == FinishReason::kStop);

  auto cut = internal::wire_api(Provider::kBedrock).stream_decoder();
  REQUIRE_FALSE(cut->feed(opening, nullptr, 200, {}));
  auto truncated = cut->finish(200);
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.error().category == ErrorCategory::kTransient);
  CHECK(truncated.error().partial_content == "Hi.");
}

TEST_CASE("A mixed chain openai -> gemini -> bedrock falls through in order, each with its own category") {
  auto env = clean_aws_env();
  auto openai = start_mock({.require_key = "sk-the-right-key-000000"});
  auto gemini = failing({.quota = 1});
  auto bedrock = start_mock();
  auto client = make_client({openai_at(*openai),
                             {.name = "gemini",
                              .provider = Provider::kGemini,
                              .base_url = gemini->base_url(),
                              .model = "gemini-2.5-flash",
                              .api_key = "AIzaSyMockKey0123456789"},
                             bedrock_at(*bedrock)});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "bedrock");
  REQUIRE(r->attempts.size() == 3);
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[1].category == ErrorCategory::kQuotaExhausted);
  CHECK_FALSE(r->attempts[2].category.has_value());
}

}  // namespace
}  // namespace llmguard
