// A tool-calling agent loop against each wire API the mock speaks, whole and
// streamed: the model asks for two tools, the reply goes back into the
// history with Message::assistant(reply), the results with
// Message::tool_result, and the next turn answers in text.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "llmguard/client.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using mock::MockToolCall;
using std::chrono::milliseconds;

struct Api {
  const char* name;
  Target target;
  const char* first_call_id_prefix;  // as the mock names the ids this API carries ("" when it has none)
};

std::vector<Api> apis(const MockServer& server) {
  return {
      {"openai",
       {.name = "openai", .base_url = server.base_url(), .model = "gpt-a", .api_key = "sk-mock-0123456789"},
       "call_mock"},
      {"anthropic",
       {.name = "anthropic",
        .provider = Provider::kAnthropic,
        .base_url = server.base_url(),
        .model = "claude-a",
        .api_key = "sk-ant-mock-0123456789"},
       "toolu_mock"},
      {"gemini",
       {.name = "gemini",
        .provider = Provider::kGemini,
        .base_url = server.base_url(),
        .model = "gemini-a",
        .api_key = "AIzaSyMock0123456789"},
       ""},
      {"bedrock",
       {.name = "bedrock",
        .provider = Provider::kBedrock,
        .base_url = server.root_url(),
        .model = "anthropic.claude-a",
        .api_key = "bedrock-key-0123456789",
        .region = "us-east-1"},
       "tooluse_mock"},
  };
}

ChatRequest weather_question() {
  ChatRequest r;
  r.messages = {Message::system("use the tools"), Message::user("Weather and time in Oslo?")};
  r.tools = {Tool{.name = "weather",
                  .description = "Weather now",
                  .parameters_json = R"({"type":"object","properties":{"city":{"type":"string"}}})"},
             Tool{.name = "clock", .description = "Local time"}};
  return r;
}

TEST_CASE("An agent loop: two tool calls, their results, then the answer, on every API, whole and streamed") {
  auto server = std::move(MockServer::start({}).value());
  for (const Api& api : apis(*server)) {
    for (bool stream : {false, true}) {
      CAPTURE(api.name);
      CAPTURE(stream);
      ClientOptions o;
      o.targets = {api.target};
      auto client = std::move(Client::create(std::move(o)).value());
      server->enqueue(api.target.model,
                      MockReply{.tool_calls = {MockToolCall{.name = "weather", .arguments_json = R"({"city":"Oslo"})"},
                                               MockToolCall{.name = "clock"}}});
      server->enqueue(api.target.model, MockReply{.content = "4 C and rain; it is noon."});

      CallOptions call;
      std::string streamed_arguments;
      if (stream) {
        call.on_delta = [&](const StreamDelta& d) {
          if (d.kind == StreamDelta::Kind::kToolCall) streamed_arguments.append(d.text);
        };
      }
      ChatRequest request = weather_question();
      auto reply = client->guarded_chat(request, call);
      REQUIRE(reply.ok());
      CHECK(reply->finish == FinishReason::kToolCalls);
      REQUIRE(reply->tool_calls.size() == 2);
      CHECK(reply->tool_calls[0].name == "weather");
      CHECK(reply->tool_calls[0].arguments_json == R"({"city":"Oslo"})");
      CHECK(reply->tool_calls[1].name == "clock");
      CHECK(reply->tool_calls[1].arguments_json == "{}");
      CHECK_FALSE(reply->tool_calls[0].id.empty());
      CHECK(reply->tool_calls[0].id != reply->tool_calls[1].id);
      if (*api.first_call_id_prefix != '\0') CHECK(reply->tool_calls[0].id.starts_with(api.first_call_id_prefix));
      if (stream) CHECK(streamed_arguments == R"({"city":"Oslo"}{})");

      request.messages.push_back(Message::assistant(*reply));
      for (const ToolCall& c : reply->tool_calls) {
        request.messages.push_back(Message::tool_result(c.id, c.name == "weather" ? "4 C, rain" : "12:00"));
      }
      auto answer = client->guarded_chat(request, call);
      REQUIRE(answer.ok());
      CHECK(answer->content == "4 C and rain; it is noon.");
      CHECK(answer->finish == FinishReason::kStop);
      CHECK(answer->tool_calls.empty());
      // The second request carried the calls and their results in this API's form.
      const std::string sent = server->recent_requests().back().body;
      CHECK(sent.find("4 C, rain") != std::string::npos);
      CHECK(sent.find("12:00") != std::string::npos);
      CHECK(sent.find("Oslo") != std::string::npos);
      if (*api.first_call_id_prefix != '\0') CHECK(sent.find(reply->tool_calls[1].id) != std::string::npos);
    }
  }
}

TEST_CASE("Mock scripts carry tool calls: a name and an object of arguments") {
  auto script = mock::parse_script(
      R"([{"model": "m", "tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}, {"name": "clock"}]}])");
  REQUIRE(script.ok());
  const auto& calls = (*script)[0].second.tool_calls;
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].name == "weather");
  CHECK(calls[0].arguments_json == R"({"city":"Oslo"})");
  CHECK(calls[1].arguments_json == "{}");
  CHECK_FALSE(mock::parse_script(R"([{"tool_calls": [{"arguments": {}}]}])").ok());
  CHECK_FALSE(mock::parse_script(R"([{"tool_calls": [{"name": "x", "arguments": "[1]"}]}])").ok());
}

}  // namespace
}  // namespace llmguard
