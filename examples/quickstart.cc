// One agent session against the bundled mock provider, with real providers'
// failures injected: a rate limit with retry-after, overloads, an exhausted
// quota, a bad request, into a chain of OpenAI, Gemini (its own API) and
// Anthropic. Shows what guarded_chat() did about each, then a usage table.
#include <fmt/format.h>

#include <map>

#include "llmguard/llmguard.h"
#include "mock_server.h"

using llmguard::ErrorCategory;
using llmguard::mock::MockReply;
using std::chrono::milliseconds;

namespace {

void print_trail(const std::vector<llmguard::Attempt>& attempts) {
  for (const auto& a : attempts) {
    if (a.skipped) {
      fmt::print("    - {:<8} skipped ({})\n", a.target, llmguard::to_string(*a.skipped));
      continue;
    }
    fmt::print("    - {:<8} waited {:>4} ms, HTTP {:<3} in {:>3} ms -> {}\n", a.target, a.waited.count(), a.http_status,
               a.duration.count(), a.category ? llmguard::to_string(*a.category) : "ok");
  }
}

struct Totals {
  int calls = 0;
  std::int64_t prompt = 0, completion = 0;
  double cost = 0;
};

}  // namespace

int main() {
  auto server = llmguard::mock::MockServer::start({});
  if (!server.ok()) {
    fmt::print(stderr, "cannot start the mock: {}\n", server.error().message);
    return 1;
  }
  auto& mock = **server;

  llmguard::ClientOptions options;
  options.targets = {
      {.name = "primary",
       .provider = llmguard::Provider::kOpenAI,
       .base_url = mock.base_url(),
       .model = "gpt-4o-mini",
       .api_key = "sk-demo-primary-000000000000",
       .context_window = 128000,
       .price = llmguard::Price{.input_per_mtok = 0.15, .output_per_mtok = 0.60}},
      {.name = "gemini",
       .provider = llmguard::Provider::kGemini,  // Gemini's own API, not its OpenAI shim
       .base_url = mock.base_url(),
       .model = "gemini-2.5-flash",
       .api_key = "AIza-demo-gemini-00000000000",
       .context_window = 1048576,
       .price = llmguard::Price{.input_per_mtok = 0.30, .output_per_mtok = 2.50}},
      {.name = "backup",
       .provider = llmguard::Provider::kAnthropic,
       .base_url = mock.base_url(),
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
    fmt::print(stderr, "bad configuration: {}\n", llmguard::describe(client.error()));
    return 1;
  }

  // What the provider will do, request by request (real providers' bodies).
  mock.enqueue(
      "gpt-4o-mini",
      {.status = 429,
       .headers = {{"retry-after-ms", "300"}},
       .body =
           R"({"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-demo on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 300ms.","type":"requests","param":null,"code":"rate_limit_exceeded"}})"});
  mock.enqueue("gpt-4o-mini", {});
  mock.enqueue(
      "gpt-4o-mini",
      {.status = 503,
       .body =
           R"({"error":{"message":"That model is currently overloaded with other requests.","type":"server_error","param":null,"code":null}})"});
  mock.enqueue("gpt-4o-mini", {.status = 502,
                               .headers = {{"content-type", "text/html"}},
                               .body = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
                                       "Gateway</h1></center><hr><center>nginx</center></body></html>"});
  mock.enqueue("gpt-4o-mini", {});
  mock.enqueue(
      "gpt-4o-mini",
      {.status = 400,
       .body =
           R"({"error":{"message":"Invalid value for 'temperature': must be between 0 and 2.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}})"});
  mock.enqueue(
      "gpt-4o-mini",
      {.status = 429,
       .body =
           R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})"});

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
    fmt::print("\n> {}\n  [{}]\n", text, label);
    if (reply.ok()) {
      fmt::print("  answered by {}: \"{}\"\n", reply->target, reply->content);
      print_trail(reply->attempts);
      Totals& t = usage[reply->target];
      ++t.calls;
      t.prompt += reply->usage.prompt_tokens;
      t.completion += reply->usage.completion_tokens;
      t.cost += reply->cost_usd.value_or(0);
    } else {
      const llmguard::Error& e = reply.error();
      fmt::print("  failed: {}\n", llmguard::describe(e));
      print_trail(e.attempts);
    }
  }

  fmt::print("\n{:<10} {:>6} {:>8} {:>11} {:>12}\n", "target", "calls", "prompt", "completion", "cost (USD)");
  for (const auto& [name, t] : usage) {
    fmt::print("{:<10} {:>6} {:>8} {:>11} {:>12.6f}\n", name, t.calls, t.prompt, t.completion, t.cost);
  }
  fmt::print("\nupstream requests seen by the mock: {}\n", mock.stats().requests);
  return 0;
}
