// Gemini's own API and Vertex AI: request bodies, replies, safety verdicts,
// streams and endpoints, without the network (loopback tests are in
// provider_loopback_test.cc).
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <cstdlib>
#include <string>

#include "client_impl.h"
#include "codec.h"
#include "providers/wire_api.h"

namespace llmguard::internal {
namespace {

simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element root;
  REQUIRE(parser.parse(json).get(root) == simdjson::SUCCESS);
  return root;
}

ChatRequest weather_conversation() {
  ChatRequest r;
  r.messages = {Message::system("be brief"), Message::user("weather in Oslo and Rome?")};
  Message calls = Message::assistant("");
  calls.tool_calls = {{.id = "call_0", .name = "weather", .arguments_json = R"({"city":"Oslo"})"},
                      {.id = "call_1", .name = "forecast", .arguments_json = R"({"city":"Rome"})"}};
  r.messages.push_back(calls);
  r.messages.push_back(Message::tool_result("call_0", R"({"celsius": 4})"));
  r.messages.push_back(Message::tool_error("call_1", "service down"));
  r.tools = {{.name = "weather", .description = "today's weather"}, {.name = "forecast"}};
  r.tool_choice = ToolChoice{.mode = ToolChoice::Mode::kFunction, .function_name = "weather"};
  r.temperature = 0.5;
  r.max_tokens = 300;
  r.stop = {"END"};
  return r;
}

TEST_CASE("Gemini body: systemInstruction, user/model turns, function calls and their responses") {
  auto body = build_request_body(Provider::kGemini, weather_conversation(), "gemini-2.5-flash");
  REQUIRE(body.ok());
  simdjson::dom::parser parser;
  auto root = parse(parser, *body);
  CHECK(root["model"].error() == simdjson::NO_SUCH_FIELD);  // the model is in the URL
  CHECK(std::string_view(root["systemInstruction"]["parts"].at(0)["text"]) == "be brief");
  auto contents = root["contents"].get_array().value();
  REQUIRE(contents.size() == 3);  // user, model with two calls, one user turn with both responses
  CHECK(std::string_view(contents.at(0)["role"]) == "user");
  CHECK(std::string_view(contents.at(1)["role"]) == "model");
  auto call_parts = contents.at(1)["parts"].get_array().value();
  REQUIRE(call_parts.size() == 2);
  CHECK(std::string_view(call_parts.at(0)["functionCall"]["name"]) == "weather");
  CHECK(std::string_view(call_parts.at(0)["functionCall"]["args"]["city"]) == "Oslo");
  auto responses = contents.at(2)["parts"].get_array().value();
  REQUIRE(responses.size() == 2);
  CHECK(std::string_view(responses.at(0)["functionResponse"]["name"]) == "weather");
  CHECK(int64_t(responses.at(0)["functionResponse"]["response"]["celsius"]) == 4);  // an object goes as it is
  CHECK(std::string_view(responses.at(1)["functionResponse"]["name"]) == "forecast");
  CHECK(std::string_view(responses.at(1)["functionResponse"]["response"]["error"]) == "service down");
  auto declarations = root["tools"].at(0)["functionDeclarations"].get_array().value();
  REQUIRE(declarations.size() == 2);
  CHECK(std::string_view(declarations.at(0)["description"]) == "today's weather");
  CHECK(std::string_view(declarations.at(0)["parameters"]["type"]) == "object");
  CHECK(std::string_view(root["toolConfig"]["functionCallingConfig"]["mode"]) == "ANY");
  CHECK(std::string_view(root["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"].at(0)) == "weather");
  CHECK(double(root["generationConfig"]["temperature"]) == 0.5);
  CHECK(int64_t(root["generationConfig"]["maxOutputTokens"]) == 300);
  CHECK(std::string_view(root["generationConfig"]["stopSequences"].at(0)) == "END");
}

TEST_CASE("Gemini body: a tool result for a call no turn made is refused before sending") {
  ChatRequest r;
  r.messages = {Message::user("hi"), Message::tool_result("call_9", "x")};
  auto body = build_request_body(Provider::kGemini, r, "m");
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().category == ErrorCategory::kBadRequest);
  CHECK(body.error().message.find("call_9") != std::string::npos);
}

TEST_CASE("Gemini reply: text, parallel function calls, thinking left out, usage with thoughts and cache") {
  const std::string body = R"({"candidates":[{"content":{"role":"model","parts":[
      {"text":"Let me think about the weather","thought":true},
      {"text":"Checking both."},
      {"functionCall":{"name":"weather","args":{"city":"Oslo"}}},
      {"functionCall":{"name":"weather","args":{"city":"Rome"}}}]},
    "finishReason":"STOP","index":0}],
    "usageMetadata":{"promptTokenCount":120,"candidatesTokenCount":30,"thoughtsTokenCount":50,
      "cachedContentTokenCount":100,"totalTokenCount":200},
    "modelVersion":"gemini-2.5-flash","responseId":"resp-1"})";
  auto r = parse_response_body(Provider::kGemini, 200, {}, body);
  REQUIRE(r.ok());
  CHECK(r->content == "Checking both.");
  CHECK(r->id == "resp-1");
  CHECK(r->model == "gemini-2.5-flash");
  CHECK(r->finish_reason == "STOP");
  CHECK(r->finish == FinishReason::kToolCalls);  // Gemini says STOP; the calls decide
  REQUIRE(r->tool_calls.size() == 2);
  CHECK(r->tool_calls[0].id != r->tool_calls[1].id);
  CHECK(r->tool_calls[1].arguments_json == R"({"city":"Rome"})");
  CHECK(r->usage.prompt_tokens == 120);
  CHECK(r->usage.completion_tokens == 80);  // candidates + thoughts
  CHECK(r->usage.reasoning_tokens == 50);
  CHECK(r->usage.cached_tokens == 100);
  CHECK_FALSE(r->usage.estimated);
}

TEST_CASE("Gemini reply: a safety verdict in a 200 is content_filter with Gemini's reason") {
  for (const char* reason : {"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"}) {
    CAPTURE(reason);
    const std::string body = fmt::format(
        R"({{"candidates":[{{"content":{{"parts":[{{"text":"partial"}}]}},"finishReason":"{}",
            "safetyRatings":[{{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH"}}]}}],
            "usageMetadata":{{"promptTokenCount":5,"totalTokenCount":5}}}})",
        reason);
    auto r = parse_response_body(Provider::kGemini, 200, {}, body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kContentFilter);
    CHECK(r.error().provider_code == reason);
    CHECK(r.error().http_status == 200);
  }
  // A blocked prompt: no candidates at all, only the verdict.
  auto blocked = parse_response_body(
      Provider::kGemini, 200, {},
      R"({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":9}})");
  REQUIRE_FALSE(blocked.ok());
  CHECK(blocked.error().category == ErrorCategory::kContentFilter);
  CHECK(blocked.error().provider_code == "PROHIBITED_CONTENT");
  // MAX_TOKENS is a reply cut short, not a refusal.
  auto cut =
      parse_response_body(Provider::kGemini, 200, {},
                          R"({"candidates":[{"content":{"parts":[{"text":"abc"}]},"finishReason":"MAX_TOKENS"}]})");
  REQUIRE(cut.ok());
  CHECK(cut->finish == FinishReason::kLength);
}

TEST_CASE("Gemini reply: no candidates and no verdict, or mistyped parts, is a malformed transient reply") {
  for (const char* body : {R"({"usageMetadata":{"promptTokenCount":9}})",
                           R"({"candidates":[{"content":{"parts":{"text":"x"}},"finishReason":"STOP"}]})",
                           R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}])"}) {
    CAPTURE(body);
    auto r = parse_response_body(Provider::kGemini, 200, {}, body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kTransient);
  }
}

// One event as Gemini sends it: the JSON on one line, events separated by
// CRLF CRLF. (The tests write the JSON over several lines for reading.)
std::string gemini_event(const std::string& json) {
  std::string line;
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (json[i] != '\n') {
      line += json[i];
      continue;
    }
    while (i + 1 < json.size() && json[i + 1] == ' ') ++i;
  }
  return "data: " + line + "\r\n\r\n";
}

TEST_CASE("Gemini stream: CRLF events, text deltas, a whole function call, the last usage, a clean end") {
  const std::string stream =
      gemini_event(R"({"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}],
                       "usageMetadata":{"promptTokenCount":7},"modelVersion":"gemini-2.5-flash","responseId":"r1"})") +
      gemini_event(R"({"candidates":[{"content":{"parts":[{"text":"lo"},
                       {"functionCall":{"name":"weather","args":{"city":"Oslo"}}}],"role":"model"},"index":0}]})") +
      gemini_event(R"({"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP",
                       "index":0}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":5,
                       "thoughtsTokenCount":3,"totalTokenCount":15},"modelVersion":"gemini-2.5-flash"})");
  // Cut at every offset: the result must not depend on how the bytes arrive.
  for (std::size_t cut = 0; cut <= stream.size(); cut += 7) {
    CAPTURE(cut);
    auto decoder = wire_api(Provider::kGemini).stream_decoder();
    std::string text;
    int tool_deltas = 0;
    auto emit = [&](const StreamDelta& d) {
      if (d.kind == StreamDelta::Kind::kText) text += d.text;
      if (d.kind == StreamDelta::Kind::kToolCall) {
        ++tool_deltas;
        CHECK(d.tool_name == "weather");
        CHECK(d.text == R"({"city":"Oslo"})");
      }
    };
    REQUIRE_FALSE(decoder->feed(std::string_view(stream).substr(0, cut), emit, 200, {}).has_value());
    REQUIRE_FALSE(decoder->feed(std::string_view(stream).substr(cut), emit, 200, {}).has_value());
    ReportedUsage reported;
    auto r = decoder->finish(200, &reported);
    REQUIRE(r.ok());
    CHECK(text == "Hello");
    CHECK(tool_deltas == 1);
    CHECK(r->content == "Hello");
    CHECK(r->id == "r1");
    CHECK(r->finish == FinishReason::kToolCalls);
    CHECK(r->usage.prompt_tokens == 7);
    CHECK(r->usage.completion_tokens == 8);
    CHECK(r->usage.reasoning_tokens == 3);
  }
}

TEST_CASE("Gemini stream: cut before a finish reason is truncated; a safety stop mid-stream keeps the partial text") {
  auto truncated = wire_api(Provider::kGemini).stream_decoder();
  REQUIRE_FALSE(
      truncated->feed(gemini_event(R"({"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]})"), nullptr, 200, {}));
  auto r = truncated->finish(200);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kTransient);

  auto filtered = wire_api(Provider::kGemini).stream_decoder();
  REQUIRE_FALSE(filtered->feed(gemini_event(R"({"candidates":[{"content":{"parts":[{"text":"Once upon"}]}}]})"),
                               nullptr, 200, {}));
  auto error = filtered->feed(gemini_event(R"({"candidates":[{"content":{"parts":[{"text":" a"}]},
                                                "finishReason":"SAFETY"}]})"),
                              nullptr, 200, {});
  REQUIRE(error.has_value());
  CHECK(error->category == ErrorCategory::kContentFilter);
  CHECK(error->provider_code == "SAFETY");
  CHECK(error->partial_content == "Once upon a");
  CHECK(filtered->delivered());
}

TEST_CASE("Gemini stream: an error object mid-stream is classified like an error reply") {
  auto decoder = wire_api(Provider::kGemini).stream_decoder();
  auto error = decoder->feed(
      gemini_event(
          R"({"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}})"),
      nullptr, 200, {});
  REQUIRE(error.has_value());
  CHECK(error->category == ErrorCategory::kTransient);
}

TEST_CASE("Gemini endpoints: the key goes in x-goog-api-key, never in the URL; Vertex has a project's URL") {
  Target gemini{
      .name = "g", .provider = Provider::kGemini, .model = "gemini-2.5-flash", .api_key = "AIzaSyTestKey0123456789"};
  Target vertex{.name = "v",
                .provider = Provider::kVertex,
                .model = "gemini-2.5-pro",
                .api_key = "ya29.token-0123456789",
                .project = "acme-ml",
                .location = "europe-west4"};
  Target global = vertex;
  global.name = "vg";
  global.location = "global";
  auto resolved = resolve_targets({gemini, vertex, global});
  REQUIRE(resolved.ok());
  const ResolvedTarget& g = (*resolved)[0];
  CHECK(g.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
  CHECK(g.stream_url ==
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
  CHECK(g.url.find("AIza") == std::string::npos);
  REQUIRE(find_header(g.headers, "x-goog-api-key"));
  CHECK(*find_header(g.headers, "x-goog-api-key") == "AIzaSyTestKey0123456789");
  const ResolvedTarget& v = (*resolved)[1];
  CHECK(v.url ==
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/acme-ml/locations/europe-west4/publishers/google/"
        "models/gemini-2.5-pro:generateContent");
  CHECK(*find_header(v.headers, "authorization") == "Bearer ya29.token-0123456789");
  CHECK((*resolved)[2].url.starts_with("https://aiplatform.googleapis.com/v1/projects/acme-ml/locations/global/"));

  Target no_project{.name = "np", .provider = Provider::kVertex, .model = "m", .location = "us-central1"};
  if (!std::getenv("GOOGLE_CLOUD_PROJECT")) {
    auto refused = resolve_targets({no_project});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().category == ErrorCategory::kBadRequest);
    CHECK(refused.error().message.find("project") != std::string::npos);
  }
}

}  // namespace
}  // namespace llmguard::internal
