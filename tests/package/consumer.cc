// Links llmguard the way a user project does and makes one real call shape
// compile and run: a client whose only target is unreachable fails cleanly.
#include <llmguard/llmguard.h>

#include <cstdio>

int main() {
  llmguard::ClientOptions options;
  options.targets = {{.name = "nowhere", .base_url = "http://127.0.0.1:1/v1", .model = "m"}};
  options.retry.max_attempts = 1;
  auto client = llmguard::Client::create(std::move(options));
  if (!client.ok()) return 1;
  llmguard::ChatRequest request;
  request.messages = {llmguard::Message::user("ping")};
  auto reply = (*client)->guarded_chat(request);
  if (reply.ok() || reply.error().category != llmguard::ErrorCategory::kConnection) return 1;
  std::puts("consumer ok");
  return 0;
}
