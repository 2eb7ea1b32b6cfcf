// An agent configured by a file, not by code: the targets, retries, limits
// and budget live in JSON (the format `llmguard chat --config` reads too), so
// operations can change providers without a rebuild.
//
//   OPENAI_API_KEY=... ANTHROPIC_API_KEY=... ./config_agent agent.json "Plan my day"
#include <cstdio>

#include "llmguard/llmguard.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CONFIG.json MESSAGE\n", argv[0]);
    return 2;
  }
  auto options = llmguard::load_client_options(argv[1]);
  if (!options.ok()) {
    std::fprintf(stderr, "%s\n", llmguard::describe(options.error()).c_str());
    return 2;
  }
  auto client = llmguard::Client::create(*std::move(options));
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", llmguard::describe(client.error()).c_str());
    return 2;
  }
  auto reply = (*client)->guarded_chat({.messages = {llmguard::Message::user(argv[2])}, .max_tokens = 500});
  const std::vector<llmguard::Attempt>& trail = reply.ok() ? reply->attempts : reply.error().attempts;
  for (const llmguard::Attempt& a : trail) {
    const auto outcome = a.skipped    ? "skipped: " + std::string(llmguard::to_string(*a.skipped))
                         : a.category ? std::string(llmguard::to_string(*a.category))
                                      : std::string("ok");
    std::printf("  %-8s HTTP %3d  %s\n", a.target.c_str(), a.http_status, outcome.c_str());
  }
  if (!reply.ok()) {
    std::fprintf(stderr, "failed: %s\n  hint: %s\n", llmguard::describe(reply.error()).c_str(),
                 reply.error().hint.c_str());
    return 1;
  }
  std::printf("%s: %s\n", reply->target.c_str(), reply->content.c_str());
  return 0;
}
