// One agent session against the bundled mock provider, with real providers'
// failures scripted in quickstart.json: a rate limit with retry-after,
// overloads, an exhausted quota, a bad request, into a chain of OpenAI,
// Gemini (its own API) and Anthropic. Shows what guarded_chat() did about
// each, then a usage table.
//
//   llmguard-mock --port 8089 --script quickstart.json &
//   ./quickstart http://127.0.0.1:8089
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "llmguard/llmguard.h"

using llmguard::ErrorCategory;
using std::chrono::milliseconds;

namespace {

void print_trail(const std::vector<llmguard::Attempt>& attempts) {
  for (const auto& a : attempts) {
    if (a.skipped) {
      std::printf("    - %-8s skipped (%s)\n", a.target.c_str(), std::string(llmguard::to_string(*a.skipped)).c_str());
      continue;
    }
    const std::string outcome = a.category ? std::string(llmguard::to_string(*a.category)) : "ok";
    std::printf("    - %-8s waited %4lld ms, HTTP %-3d in %3lld ms -> %s\n", a.target.c_str(),
                static_cast<long long>(a.waited.count()), a.http_status, static_cast<long long>(a.duration.count()),
                outcome.c_str());
  }
}

struct Totals {
  int calls = 0;
  std::int64_t prompt = 0, completion = 0;
  double cost = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("MOCK_URL");  // as scripts/with-mock.sh sets it
  const std::string mock = argc > 1 ? argv[1] : env ? env : "http://127.0.0.1:8089";
  llmguard::ClientOptions options;
  options.targets = {
      {.name = "primary",
       .provider = llmguard::Provider::kOpenAI,
       .base_url = mock + "/v1",
       .model = "gpt-4o-mini",
       .api_key = "sk-demo-primary-000000000000",
       .context_window = 128000,
       .price = llmguard::Price{.input_per_mtok = 0.15, .output_per_mtok = 0.60}},
      {.name = "gemini",
       .provider = llmguard::Provider::kGemini,  // Gemini's own API, not its OpenAI shim
       .base_url = mock + "/v1beta",
       .model = "gemini-2.5-flash",
       .api_key = "AIza-demo-gemini-00000000000",
       .context_window = 1048576,
       .price = llmguard::Price{.input_per_mtok = 0.30, .output_per_mtok = 2.50}},
      {.name = "backup",
       .provider = llmguard::Provider::kAnthropic,
       .base_url = mock + "/v1",
       .model = "claude-3-5-haiku-latest",
       .api_key = "sk-ant-demo-backup-0000000000",
       .context_window = 200000,
       .price = llmguard::Price{.input_per_mtok = 0.80, .output_per_mtok = 4.00}},
  };
  options.retry.base_delay = milliseconds(50);
  options.retry.max_delay = milliseconds(400);
  options.retry.max_retry_after = milliseconds(2000);
  options.deadline = milliseconds(10000);
  auto client = llmguard::Client::create(std::move(options));
  if (!client.ok()) {
    std::fprintf(stderr, "bad configuration: %s\n", llmguard::describe(client.error()).c_str());
    return 1;
  }

  const std::vector<std::pair<std::string, std::string>> turns = {
      {"rate limited, then answered", "Plan the steps to summarise a file."},
      {"overloaded twice, then answered", "Read the file header."},
      {"bad request: fails fast, no retry, no fallback", "Summarise section 2 at temperature 7."},
      {"quota exhausted: falls back to Gemini's native API", "Summarise section 2."},
      {"primary out for its quota cooldown: skipped without a request", "Write the final answer."},
  };
  std::map<std::string, Totals> usage;
  for (const auto& [label, text] : turns) {
    llmguard::ChatRequest request;
    request.messages = {llmguard::Message::system("You are a terse file-summary agent."),
                        llmguard::Message::user(text)};
    request.caller_tag = "demo-agent";
    auto reply = (*client)->guarded_chat(request);
    std::printf("\n> %s\n  [%s]\n", text.c_str(), label.c_str());
    if (reply.ok()) {
      std::printf("  answered by %s: \"%s\"\n", reply->target.c_str(), reply->content.c_str());
      print_trail(reply->attempts);
      Totals& t = usage[reply->target];
      ++t.calls;
      t.prompt += reply->usage.prompt_tokens;
      t.completion += reply->usage.completion_tokens;
      t.cost += reply->cost_usd.value_or(0);
    } else {
      const llmguard::Error& e = reply.error();
      std::printf("  failed: %s\n", llmguard::describe(e).c_str());
      print_trail(e.attempts);
    }
  }

  std::printf("\n%-10s %6s %8s %11s %12s\n", "target", "calls", "prompt", "completion", "cost (USD)");
  for (const auto& [name, t] : usage) {
    std::printf("%-10s %6d %8lld %11lld %12.6f\n", name.c_str(), t.calls, static_cast<long long>(t.prompt),
                static_cast<long long>(t.completion), t.cost);
  }
  return 0;
}
