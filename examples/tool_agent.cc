// A tool-calling agent: the model asks for tools, the agent runs them and
// sends the results back, until the model answers in text. OpenAI first,
// Anthropic when OpenAI cannot answer; the same loop works on either.
//
//   OPENAI_API_KEY=... ANTHROPIC_API_KEY=... ./tool_agent "What's the weather in Oslo?"
#include <cstdio>
#include <string>

#include "llmguard/llmguard.h"

namespace {

// The agent's tools. A real one would parse call.arguments_json.
llmguard::Message run_tool(const llmguard::ToolCall& call) {
  if (call.name == "get_weather") return llmguard::Message::tool_result(call.id, R"({"temp_c":4,"sky":"overcast"})");
  if (call.name == "get_time") return llmguard::Message::tool_result(call.id, R"({"time":"14:05"})");
  return llmguard::Message::tool_error(call.id, "no such tool: " + call.name);
}

constexpr const char* kCitySchema = R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})";

}  // namespace

int main(int argc, char** argv) {
  auto client = llmguard::Client::create(
      {.targets = {
           {.name = "openai", .model = "gpt-4o-mini"},
           {.name = "claude", .provider = llmguard::Provider::kAnthropic, .model = "claude-3-5-haiku-latest"},
       }});
  if (!client.ok()) {
    std::fprintf(stderr, "configuration: %s\n", llmguard::describe(client.error()).c_str());
    return 2;
  }
  llmguard::ChatRequest request{
      .messages = {llmguard::Message::user(argc > 1 ? argv[1] : "What's the weather and the time in Oslo?")},
      .tools = {{.name = "get_weather", .description = "Current weather in a city", .parameters_json = kCitySchema},
                {.name = "get_time", .description = "Local time in a city", .parameters_json = kCitySchema}},
      .max_tokens = 1024,
  };
  for (int turn = 0; turn < 10; ++turn) {
    auto reply = (*client)->guarded_chat(request);
    if (!reply.ok()) {
      std::fprintf(stderr, "failed: %s\n  hint: %s\n", llmguard::describe(reply.error()).c_str(),
                   reply.error().hint.c_str());
      return 1;
    }
    request.messages.push_back(llmguard::Message::assistant(*reply));
    if (reply->tool_calls.empty()) {
      std::printf("%s\n", reply->content.c_str());
      return 0;
    }
    for (const llmguard::ToolCall& call : reply->tool_calls) {
      std::printf("[%s] %s(%s)\n", reply->target.c_str(), call.name.c_str(), call.arguments_json.c_str());
      request.messages.push_back(run_tool(call));
    }
  }
  std::fprintf(stderr, "no answer after 10 turns\n");
  return 1;
}
