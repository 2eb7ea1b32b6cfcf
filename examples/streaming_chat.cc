// A streaming chat: text is printed as it arrives. When a stream breaks
// after some text was shown, a chat UI keeps what the user saw and says the
// reply was cut off (the default); an agent that wants one complete answer
// passes --restart, and the call starts over on the next target.
//
//   OPENAI_API_KEY=... ANTHROPIC_API_KEY=... ./streaming_chat [--restart] "Tell me a story"
#include <cstdio>
#include <string>
#include <string_view>

#include "llmguard/llmguard.h"

int main(int argc, char** argv) {
  bool restart = false;
  std::string prompt = "Tell me a short story about a lighthouse.";
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--restart") {
      restart = true;
    } else {
      prompt = argv[i];
    }
  }
  auto client = llmguard::Client::create(
      {.targets = {
           {.name = "openai", .model = "gpt-4o-mini"},
           {.name = "claude", .provider = llmguard::Provider::kAnthropic, .model = "claude-3-5-haiku-latest"},
       }});
  if (!client.ok()) {
    std::fprintf(stderr, "configuration: %s\n", llmguard::describe(client.error()).c_str());
    return 2;
  }

  llmguard::CallOptions call;
  call.restart_stream_on_failure = restart;
  call.on_delta = [](const llmguard::StreamDelta& delta) {
    if (delta.kind == llmguard::StreamDelta::Kind::kText) {
      std::fwrite(delta.text.data(), 1, delta.text.size(), stdout);
      std::fflush(stdout);
    } else if (delta.kind == llmguard::StreamDelta::Kind::kRestart) {
      std::printf("\n[the stream broke; starting over on another provider]\n");
    }
  };
  auto reply = (*client)->guarded_chat({.messages = {llmguard::Message::user(prompt)}, .max_tokens = 400}, call);
  if (!reply.ok()) {
    const llmguard::Error& error = reply.error();
    if (!error.partial_content.empty()) {
      std::printf("\n[the reply was cut off after %zu characters]\n", error.partial_content.size());
    }
    std::fprintf(stderr, "failed: %s\n  hint: %s\n", llmguard::describe(error).c_str(), error.hint.c_str());
    return 1;
  }
  std::printf("\n[%s, %lld tokens in, %lld out]\n", reply->target.c_str(),
              static_cast<long long>(reply->usage.prompt_tokens),
              static_cast<long long>(reply->usage.completion_tokens));
  return 0;
}
