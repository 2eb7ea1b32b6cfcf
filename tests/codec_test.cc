#include "codec.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <limits>
#include <string>

namespace llmguard::internal {
namespace {

ChatRequest simple_request() {
  ChatRequest r;
  r.messages = {Message::system("be brief"), Message::user("hi \"there\"\n")};
  return r;
}

simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element root;
  REQUIRE(parser.parse(json).get(root) == simdjson::SUCCESS);
  return root;
}

TEST_CASE("OpenAI body carries model, messages and the optional fields that were set") {
  ChatRequest r = simple_request();
  r.temperature = 0.2;
  r.max_tokens = 64;
  r.stop = {"END"};
  r.response_format_json = R"({"type":"json_object"})";
  auto body = build_request_body(Provider::kOpenAI, r, "gpt-4o-mini");
  REQUIRE(body.ok());
  simdjson::dom::parser parser;
  auto root = parse(parser, *body);
  CHECK(std::string_view(root["model"]) == "gpt-4o-mini");
  CHECK(std::string_view(root["messages"].at(0)["role"]) == "system");
  CHECK(std::string_view(root["messages"].at(1)["content"]) == "hi \"there\"\n");
  CHECK(double(root["temperature"]) == doctest::Approx(0.2));
  CHECK(int64_t(root["max_tokens"]) == 64);
  CHECK(std::string_view(root["stop"].at(0)) == "END");
  CHECK(std::string_view(root["response_format"]["type"]) == "json_object");
  CHECK(root["top_p"].error() == simdjson::NO_SUCH_FIELD);
  CHECK(root["tools"].error() == simdjson::NO_SUCH_FIELD);
}

TEST_CASE("OpenAI body writes tools, tool_choice, tool calls and tool results") {
  ChatRequest r;
  r.messages.push_back(Message::user("weather?"));
  Message call = Message::assistant("");
  call.tool_calls.push_back({.id = "call_1", .name = "get_weather", .arguments_json = R"({"city":"Oslo"})"});
  r.messages.push_back(call);
  r.messages.push_back(Message::tool_result("call_1", "sunny"));
  r.tools.push_back({.name = "get_weather",
                     .description = "d",
                     .parameters_json = R"({"type":"object","properties":{"city":{"type":"string"}}})"});
  r.tool_choice = ToolChoice{.mode = ToolChoice::Mode::kFunction, .function_name = "get_weather"};
  auto body = build_request_body(Provider::kOpenAI, r, "m");
  REQUIRE(body.ok());
  simdjson::dom::parser parser;
  auto root = parse(parser, *body);
  auto assistant = root["messages"].at(1);
  CHECK(assistant["content"].is_null());
  CHECK(std::string_view(assistant["tool_calls"].at(0)["function"]["arguments"]) == R"({"city":"Oslo"})");
  CHECK(std::string_view(root["messages"].at(2)["tool_call_id"]) == "call_1");
  CHECK(std::string_view(root["tools"].at(0)["function"]["parameters"]["type"]) == "object");
  CHECK(std::string_view(root["tool_choice"]["function"]["name"]) == "get_weather");
}

TEST_CASE("Extra body members are added and replace llmguard's own field of the same name") {
  ChatRequest r = simple_request();
  r.max_tokens = 10;
  r.extra_body_json = R"({"max_tokens": 99, "seed": 7, "metadata": {"k": [1, 2]}})";
  auto body = build_request_body(Provider::kOpenAI, r, "m");
  REQUIRE(body.ok());
  simdjson::dom::parser parser;
  auto root = parse(parser, *body);
  CHECK(int64_t(root["max_tokens"]) == 99);
  CHECK(int64_t(root["seed"]) == 7);
  CHECK(int64_t(root["metadata"]["k"].at(1)) == 2);
  CHECK(body->find("\"max_tokens\"") == body->rfind("\"max_tokens\""));  // written once
}

TEST_CASE("Invalid caller input is a bad_request naming the field, and nothing is built") {
  SUBCASE("invalid UTF-8 in a message") {
    ChatRequest r = simple_request();
    r.messages[1].content = "caf\xe9";  // Latin-1, not UTF-8
    auto body = build_request_body(Provider::kOpenAI, r, "m");
    REQUIRE_FALSE(body.ok());
    CHECK(body.error().category == ErrorCategory::kBadRequest);
    CHECK(body.error().message == "messages[1].content is not valid UTF-8 (bad byte at offset 3)");
  }
  SUBCASE("malformed tool schema") {
    ChatRequest r = simple_request();
    r.tools.push_back({.name = "t", .parameters_json = "{not json"});
    auto body = build_request_body(Provider::kOpenAI, r, "m");
    REQUIRE_FALSE(body.ok());
    CHECK(body.error().message.find("tools[0].parameters_json") != std::string::npos);
  }
  SUBCASE("extra body that is not an object") {
    ChatRequest r = simple_request();
    r.extra_body_json = "[1]";
    CHECK_FALSE(build_request_body(Provider::kOpenAI, r, "m").ok());
  }
  SUBCASE("no messages") { CHECK_FALSE(build_request_body(Provider::kOpenAI, ChatRequest{}, "m").ok()); }
  SUBCASE("non-positive max_tokens") {
    ChatRequest r = simple_request();
    r.max_tokens = 0;
    CHECK_FALSE(build_request_body(Provider::kAnthropic, r, "m").ok());
  }
}

TEST_CASE("Anthropic body lifts system text, requires max_tokens and maps tool turns") {
  ChatRequest r = simple_request();
  Message call = Message::assistant("checking");
  call.tool_calls.push_back({.id = "toolu_1", .name = "lookup", .arguments_json = R"({"q":"x"})"});
  r.messages.push_back(call);
  r.messages.push_back(Message::tool_result("toolu_1", "found"));
  r.tool_choice = ToolChoice{.mode = ToolChoice::Mode::kRequired};
  r.stop = {"###"};
  auto body = build_request_body(Provider::kAnthropic, r, "claude-x");
  REQUIRE(body.ok());
  simdjson::dom::parser parser;
  auto root = parse(parser, *body);
  CHECK(std::string_view(root["system"]) == "be brief");
  CHECK(int64_t(root["max_tokens"]) == 4096);
  CHECK(root["messages"].get_array().size() == 3);
  CHECK(std::string_view(root["messages"].at(1)["content"].at(1)["type"]) == "tool_use");
  CHECK(std::string_view(root["messages"].at(1)["content"].at(1)["input"]["q"]) == "x");
  CHECK(std::string_view(root["messages"].at(2)["role"]) == "user");
  CHECK(std::string_view(root["messages"].at(2)["content"].at(0)["tool_use_id"]) == "toolu_1");
  CHECK(std::string_view(root["tool_choice"]["type"]) == "any");
  CHECK(std::string_view(root["stop_sequences"].at(0)) == "###");
}

TEST_CASE("Anthropic: parallel tool results go in one user turn, a failed tool's marked is_error") {
  ChatRequest r = simple_request();
  Message call = Message::assistant("");
  call.tool_calls.push_back({.id = "toolu_1", .name = "weather", .arguments_json = R"({"city":"Oslo"})"});
  call.tool_calls.push_back({.id = "toolu_2", .name = "weather", .arguments_json = R"({"city":"Rome"})"});
  r.messages.push_back(call);
  r.messages.push_back(Message::tool_result("toolu_1", "4 C"));
  r.messages.push_back(Message::tool_error("toolu_2", "service down"));
  r.messages.push_back(Message::user("and tomorrow?"));
  auto body = build_request_body(Provider::kAnthropic, r, "claude-x");
  REQUIRE(body.ok());
  simdjson::dom::parser parser;
  auto root = parse(parser, *body);
  auto messages = root["messages"].get_array().value();
  REQUIRE(messages.size() == 4);  // user, assistant, one user turn of results, user
  auto results = messages.at(2)["content"].get_array().value();
  REQUIRE(results.size() == 2);
  CHECK(std::string_view(results.at(0)["tool_use_id"]) == "toolu_1");
  CHECK(results.at(0)["is_error"].error() == simdjson::NO_SUCH_FIELD);
  CHECK(std::string_view(results.at(1)["tool_use_id"]) == "toolu_2");
  CHECK(bool(results.at(1)["is_error"]));
  CHECK(std::string_view(messages.at(3)["content"]) == "and tomorrow?");
}

TEST_CASE("Anthropic tool-call arguments that are not JSON are refused") {
  ChatRequest r = simple_request();
  Message call = Message::assistant("");
  call.tool_calls.push_back({.id = "t", .name = "n", .arguments_json = "{oops"});
  r.messages.push_back(call);
  auto body = build_request_body(Provider::kAnthropic, r, "m");
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().message.find("messages[2].tool_calls[0].arguments_json") != std::string::npos);
}

TEST_CASE("OpenAI response: content, tool calls, finish reason and every usage field") {
  const std::string body = R"({"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06",
    "choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,
      "tool_calls":[{"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},
      "finish_reason":"tool_calls"}],
    "usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150,
      "prompt_tokens_details":{"cached_tokens":100,"audio_tokens":0},
      "completion_tokens_details":{"reasoning_tokens":12,"audio_tokens":0}}})";
  auto r = parse_response_body(Provider::kOpenAI, 200, {}, body);
  REQUIRE(r.ok());
  CHECK(r->id == "chatcmpl-1");
  CHECK(r->model == "gpt-4o-2024-08-06");
  CHECK(r->content.empty());
  CHECK(r->finish_reason == "tool_calls");
  CHECK(r->finish == FinishReason::kToolCalls);
  REQUIRE(r->tool_calls.size() == 1);
  CHECK(r->tool_calls[0].name == "f");
  CHECK(r->tool_calls[0].arguments_json == R"({"x":1})");
  CHECK(r->usage.prompt_tokens == 120);
  CHECK(r->usage.completion_tokens == 30);
  CHECK(r->usage.total_tokens == 150);
  CHECK(r->usage.cached_tokens == 100);
  CHECK(r->usage.reasoning_tokens == 12);
}

TEST_CASE("OpenAI response: refusal text and null details are read") {
  const std::string body = R"({"choices":[{"message":{"content":null,"refusal":"I can't help with that."},
    "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":6,"prompt_tokens_details":null}})";
  auto r = parse_response_body(Provider::kOpenAI, 200, {}, body);
  REQUIRE(r.ok());
  CHECK(r->refusal == "I can't help with that.");
  CHECK(r->usage.total_tokens == 11);  // derived when absent
}

TEST_CASE("Usage variants of OpenAI-format replies map to one Usage") {
  auto usage_of = [](std::string usage_json) {
    const std::string body = R"({"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}],)" + usage_json + "}";
    auto r = parse_response_body(Provider::kOpenAI, 200, {}, body);
    REQUIRE(r.ok());
    CHECK(r->content == "ok");
    return r->usage;
  };
  // OpenRouter: cache reads and writes in prompt_tokens_details.
  Usage openrouter = usage_of(R"("usage":{"prompt_tokens":1200,"completion_tokens":40,"total_tokens":1240,
      "prompt_tokens_details":{"cached_tokens":1000,"cache_write_tokens":150},"cost":0.0012})");
  CHECK(openrouter.cached_tokens == 1000);
  CHECK(openrouter.cache_write_tokens == 150);
  CHECK(openrouter.total_tokens == 1240);
  // DeepSeek: cache hits beside the prompt count.
  Usage deepseek = usage_of(R"("usage":{"prompt_tokens":900,"completion_tokens":10,"total_tokens":910,
      "prompt_cache_hit_tokens":640,"prompt_cache_miss_tokens":260})");
  CHECK(deepseek.cached_tokens == 640);
  // LiteLLM in front of Anthropic: Anthropic's cache counts at the top level.
  Usage litellm = usage_of(R"("usage":{"prompt_tokens":2210,"completion_tokens":12,"total_tokens":2222,
      "cache_creation_input_tokens":2000,"cache_read_input_tokens":0})");
  CHECK(litellm.cache_write_tokens == 2000);
  CHECK(litellm.cached_tokens == 0);
  // Gemini's usageMetadata: thinking tokens count as completion tokens.
  Usage gemini = usage_of(R"("usageMetadata":{"promptTokenCount":300,"candidatesTokenCount":50,
      "thoughtsTokenCount":120,"cachedContentTokenCount":256,"totalTokenCount":470})");
  CHECK(gemini.prompt_tokens == 300);
  CHECK(gemini.completion_tokens == 170);
  CHECK(gemini.reasoning_tokens == 120);
  CHECK(gemini.cached_tokens == 256);
  CHECK(gemini.total_tokens == 470);
  // A usage field of the wrong type is dropped and the usage marked estimated; the answer is kept.
  Usage odd = usage_of(R"("usage":{"prompt_tokens":"12","completion_tokens":7})");
  CHECK(odd.prompt_tokens == 0);
  CHECK(odd.completion_tokens == 7);
  CHECK(odd.estimated);
}

// Hostile usage, whole bodies: each provider's format with the same bad numbers.
struct Parsed {
  ChatResponse response;
  ReportedUsage reported;
};

Parsed parse_with_usage(Provider provider, const std::string& usage_member) {
  const std::string head =
      provider == Provider::kAnthropic
          ? R"({"id":"msg_1","type":"message","content":[{"type":"text","text":"twelve bytes"}],)"
            R"("stop_reason":"end_turn")"
          : R"({"id":"c1","choices":[{"message":{"content":"twelve bytes"},"finish_reason":"stop"}])";
  const std::string body = head + usage_member + "}";
  Parsed p;
  auto r = parse_response_body(provider, 200, {}, body, &p.reported);
  REQUIRE(r.ok());
  CHECK(r->content == "twelve bytes");
  p.response = std::move(*r);
  return p;
}

std::string usage_member(Provider provider, std::string_view prompt, std::string_view completion) {
  return provider == Provider::kAnthropic
             ? fmt::format(R"(,"usage":{{"input_tokens":{},"output_tokens":{}}})", prompt, completion)
             : fmt::format(R"(,"usage":{{"prompt_tokens":{},"completion_tokens":{}}})", prompt, completion);
}

TEST_CASE("Hostile usage in whole replies: negative counts are kept as reported, never accounted") {
  for (Provider p : {Provider::kOpenAI, Provider::kAnthropic}) {
    CAPTURE(static_cast<int>(p));
    Parsed r = parse_with_usage(p, usage_member(p, "-5000", "-7"));
    CHECK(r.reported.reported);
    CHECK(r.reported.prompt == ReportedCount::of(-5000));
    CHECK(r.reported.completion == ReportedCount::of(-7));
    CHECK(r.response.usage.prompt_tokens == 0);      // the prompt estimate is the caller's
    CHECK(r.response.usage.completion_tokens == 3);  // estimated from the 12 bytes of content
    CHECK(r.response.usage.estimated);
    const Usage checked = checked_usage(r.reported, 50, 3);
    CHECK(checked.prompt_tokens == 50);
    CHECK(checked.total_tokens == 53);
  }
}

TEST_CASE("Hostile usage in whole replies: int64-max counts are clamped without overflow") {
  for (Provider p : {Provider::kOpenAI, Provider::kAnthropic}) {
    CAPTURE(static_cast<int>(p));
    Parsed r = parse_with_usage(p, usage_member(p, "9223372036854775807", "9223372036854775807"));
    CHECK(r.reported.prompt == ReportedCount::of(std::numeric_limits<std::int64_t>::max()));
    CHECK(r.response.usage.prompt_tokens == kMaxTokenCount);
    CHECK(r.response.usage.total_tokens == 2 * kMaxTokenCount);
    CHECK_FALSE(r.response.usage.estimated);
  }
  // Anthropic's prompt is a sum of three counts: it saturates.
  Parsed r = parse_with_usage(Provider::kAnthropic, R"(,"usage":{"input_tokens":9223372036854775807,
      "cache_read_input_tokens":9223372036854775807,"cache_creation_input_tokens":5,"output_tokens":1})");
  CHECK(r.reported.prompt == ReportedCount::of(std::numeric_limits<std::int64_t>::max()));
  CHECK(r.response.usage.prompt_tokens == kMaxTokenCount);
}

TEST_CASE("Hostile usage in whole replies: float counts are read, fractions rounded up") {
  for (Provider p : {Provider::kOpenAI, Provider::kAnthropic}) {
    CAPTURE(static_cast<int>(p));
    Parsed r = parse_with_usage(p, usage_member(p, "12.0", "12.5"));
    CHECK(r.response.usage.prompt_tokens == 12);
    CHECK(r.response.usage.completion_tokens == 13);
    CHECK(r.response.usage.total_tokens == 25);
    CHECK_FALSE(r.response.usage.estimated);
  }
}

TEST_CASE("Hostile usage in whole replies: out-of-range numbers do not lose the reply") {
  for (Provider p : {Provider::kOpenAI, Provider::kAnthropic}) {
    for (std::string_view huge : {"1e999", "123456789012345678901234567890", "-1e999"}) {
      CAPTURE(static_cast<int>(p));
      CAPTURE(huge);
      Parsed r = parse_with_usage(p, usage_member(p, huge, "4"));
      CHECK(r.reported.prompt == ReportedCount::invalid());
      CHECK(r.reported.completion == ReportedCount::of(4));
      CHECK(r.response.usage.completion_tokens == 4);
      CHECK(r.response.usage.estimated);
    }
  }
  // Still strict about structure: every cut of such a body is an error.
  const std::string full =
      R"({"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1e999}})";
  for (std::size_t cut = 1; cut < full.size(); ++cut) {
    CAPTURE(cut);
    auto r = parse_response_body(Provider::kOpenAI, 200, {}, full.substr(0, cut));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kTransient);
  }
}

TEST_CASE("Hostile usage in whole replies: inconsistent totals and parts are made consistent") {
  Parsed r = parse_with_usage(Provider::kOpenAI, R"(,"usage":{"prompt_tokens":100,"completion_tokens":20,
      "total_tokens":0,"prompt_tokens_details":{"cached_tokens":5000},
      "completion_tokens_details":{"reasoning_tokens":900}})");
  CHECK(r.reported.total == ReportedCount::of(0));
  CHECK(r.reported.cached == ReportedCount::of(5000));
  CHECK(r.response.usage.total_tokens == 120);
  CHECK(r.response.usage.cached_tokens == 100);
  CHECK(r.response.usage.reasoning_tokens == 20);
  // Anthropic: cache reads are part of the prompt by construction, and the total is derived.
  r = parse_with_usage(Provider::kAnthropic,
                       R"(,"usage":{"input_tokens":0,"cache_read_input_tokens":300,"output_tokens":2})");
  CHECK(r.response.usage.prompt_tokens == 300);
  CHECK(r.response.usage.cached_tokens == 300);
  CHECK(r.response.usage.total_tokens == 302);
}

TEST_CASE("A reply without usage, with usage null or of the wrong type, is estimated, not zero and exact") {
  for (Provider p : {Provider::kOpenAI, Provider::kAnthropic}) {
    for (std::string_view member : {"", R"(,"usage":null)", R"(,"usage":"n/a")"}) {
      CAPTURE(static_cast<int>(p));
      CAPTURE(member);
      Parsed r = parse_with_usage(p, std::string(member));
      CHECK_FALSE(r.reported.reported);
      CHECK(r.response.usage.estimated);
      CHECK(r.response.usage.completion_tokens == 3);
      CHECK(checked_usage(r.reported, 9, 3).prompt_tokens == 9);
    }
  }
}

TEST_CASE("Anthropic response: text blocks, tool use and cache usage") {
  const std::string body = R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
    "content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"},
               {"type":"tool_use","id":"toolu_9","name":"calc","input":{"a": [1, 2]}}],
    "stop_reason":"tool_use","usage":{"input_tokens":10,"cache_creation_input_tokens":5,
    "cache_read_input_tokens":200,"output_tokens":7}})";
  auto r = parse_response_body(Provider::kAnthropic, 200, {}, body);
  REQUIRE(r.ok());
  CHECK(r->content == "Hi there");
  CHECK(r->finish_reason == "tool_use");
  CHECK(r->finish == FinishReason::kToolCalls);  // the same as OpenAI's "tool_calls"
  REQUIRE(r->tool_calls.size() == 1);
  CHECK(r->tool_calls[0].arguments_json == R"({"a":[1,2]})");  // re-serialised compactly
  CHECK(r->usage.prompt_tokens == 215);
  CHECK(r->usage.cached_tokens == 200);
  CHECK(r->usage.completion_tokens == 7);
  CHECK(r->usage.total_tokens == 222);
}

TEST_CASE("Finish reasons of every API map to one normalised reason") {
  auto finish_of = [](Provider p, std::string_view body) {
    auto r = parse_response_body(p, 200, {}, std::string(body));
    REQUIRE(r.ok());
    return r->finish;
  };
  auto openai = [](std::string_view reason, std::string_view calls = "") {
    return fmt::format(R"({{"choices":[{{"message":{{"content":"x"{}}},"finish_reason":"{}"}}]}})", calls, reason);
  };
  CHECK(finish_of(Provider::kOpenAI, openai("stop")) == FinishReason::kStop);
  CHECK(finish_of(Provider::kOpenAI, openai("length")) == FinishReason::kLength);
  CHECK(finish_of(Provider::kOpenAI, openai("content_filter")) == FinishReason::kContentFilter);
  CHECK(finish_of(Provider::kOpenAI, openai("something_new")) == FinishReason::kOther);
  // A forced function call finishes with "stop": the reply's tool calls decide.
  CHECK(finish_of(Provider::kOpenAI, openai("stop", R"(,"tool_calls":[{"id":"c","function":{"name":"f"}}])")) ==
        FinishReason::kToolCalls);
  auto anthropic = [](std::string_view reason) {
    return fmt::format(R"({{"content":[{{"type":"text","text":"x"}}],"stop_reason":"{}"}})", reason);
  };
  CHECK(finish_of(Provider::kAnthropic, anthropic("end_turn")) == FinishReason::kStop);
  CHECK(finish_of(Provider::kAnthropic, anthropic("stop_sequence")) == FinishReason::kStop);
  CHECK(finish_of(Provider::kAnthropic, anthropic("max_tokens")) == FinishReason::kLength);
  CHECK(finish_of(Provider::kAnthropic, anthropic("refusal")) == FinishReason::kContentFilter);
  CHECK(to_string(FinishReason::kToolCalls) == "tool_calls");
  CHECK(to_string(FinishReason::kContentFilter) == "content_filter");
}

TEST_CASE("Malformed and truncated bodies are typed transient errors, never crashes") {
  const std::string full = R"({"choices":[{"message":{"content":"hello"},"finish_reason":"stop"}]})";
  for (std::size_t cut = 0; cut < full.size(); ++cut) {
    CAPTURE(cut);
    auto r = parse_response_body(Provider::kOpenAI, 200, {}, full.substr(0, cut));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kTransient);
  }
  for (const char* junk :
       {"", "null", "[]", "{\"choices\":7}", "{\"choices\":[]}", "{\"choices\":[{\"message\":{\"content\":12}}]}"}) {
    CAPTURE(junk);
    auto r = parse_response_body(Provider::kOpenAI, 200, {}, junk);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kTransient);
    CHECK(r.error().message.starts_with("malformed response body"));
  }
}

TEST_CASE("A 200 web page where JSON belongs says a page answered, not a truncated reply") {
  const std::string page = "\n<!DOCTYPE html><html><head><title>OpenAI</title></head><body></body></html>";
  auto r = parse_response_body(Provider::kOpenAI, 200, {{"content-type", "text/html"}}, page);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kUnknown);
  CHECK(r.error().message == "HTTP 200 with an HTML page (a gateway or proxy answered, not the API)");
  CHECK(r.error().hint.find("base_url") != std::string::npos);
}

TEST_CASE("A 200 whose body is an error object is classified as that error") {
  const std::string body =
      R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}})";
  auto r = parse_response_body(Provider::kOpenAI, 200, {}, body);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kQuotaExhausted);
  CHECK(r.error().provider_code == "insufficient_quota");
}

TEST_CASE("Deeply nested JSON is refused without exhausting the stack") {
  std::string deep(100000, '[');
  auto r = parse_response_body(Provider::kOpenAI, 200, {}, deep);
  CHECK_FALSE(r.ok());
}

}  // namespace
}  // namespace llmguard::internal
