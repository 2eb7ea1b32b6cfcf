// A multi-threaded service: one client shared by every request thread, each
// user's calls tagged with the user's name, a daily budget per user, a
// client-side request limit under the provider's, an event logger, and at
// the end the usage per user and the Prometheus text a /metrics endpoint
// would serve.
//
//   OPENAI_API_KEY=... ./service
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "llmguard/llmguard.h"

namespace {

struct User {
  std::string name;
  std::int64_t daily_tokens;  // what the user's plan allows per UTC day
};

const std::vector<User> kUsers = {{"alice", 200'000}, {"bob", 200'000}, {"carol", 200'000}, {"trial", 1'000}};
constexpr int kRequestsPerUser = 5;

llmguard::ClientOptions service_options() {
  llmguard::ClientOptions options;
  options.targets = {{.name = "openai",
                      .model = "gpt-4o-mini",
                      .price = llmguard::Price{.input_per_mtok = 0.15, .output_per_mtok = 0.60},
                      .limits = {.max_concurrency = 8, .requests_per_minute = 5000}}};
  for (const User& user : kUsers) {
    options.budgets.push_back(
        {.caller_tag = user.name, .period = llmguard::Budget::Period::kDay, .tokens = user.daily_tokens});
  }
  // On the client's event-loop thread, one at a time: no lock needed, but no blocking either.
  options.on_event = [](const llmguard::Event& event) {
    using Kind = llmguard::Event::Kind;
    if (event.kind == Kind::kRetryScheduled || event.kind == Kind::kFallback || event.kind == Kind::kBreakerOpened) {
      std::fprintf(stderr, "event: %.*s target=%.*s caller=%.*s status=%d category=%.*s delay_ms=%lld\n",
                   static_cast<int>(llmguard::to_string(event.kind).size()), llmguard::to_string(event.kind).data(),
                   static_cast<int>(event.target.size()), event.target.data(),
                   static_cast<int>(event.caller_tag.size()), event.caller_tag.data(), event.http_status,
                   static_cast<int>(event.category ? llmguard::to_string(*event.category).size() : 0),
                   event.category ? llmguard::to_string(*event.category).data() : "",
                   static_cast<long long>(event.delay.count()));
    }
  };
  return options;
}

}  // namespace

int main() {
  auto client = llmguard::Client::create(service_options());
  if (!client.ok()) {
    std::fprintf(stderr, "configuration: %s\n", llmguard::describe(client.error()).c_str());
    return 2;
  }
  llmguard::Client& llm = **client;

  std::vector<std::thread> workers;
  for (const User& user : kUsers) {
    workers.emplace_back([&llm, &user] {
      for (int i = 0; i < kRequestsPerUser; ++i) {
        llmguard::ChatRequest request;
        request.messages = {llmguard::Message::user("Summarise ticket #" + std::to_string(i) + " for " + user.name)};
        request.max_tokens = 400;  // bounds what the budget reserves for the call
        request.caller_tag = user.name;
        auto reply = llm.guarded_chat(request);
        if (!reply.ok() && reply.error().category == llmguard::ErrorCategory::kBudgetExceeded) {
          std::printf("%s: refused, daily budget spent\n", user.name.c_str());
        } else if (!reply.ok()) {
          std::printf("%s: failed: %s\n", user.name.c_str(), llmguard::describe(reply.error()).c_str());
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();

  const llmguard::UsageSnapshot usage = llm.usage();
  std::printf("\n%-8s %9s %9s %9s %11s\n", "user", "answered", "failed", "tokens", "cost (USD)");
  for (const auto& [user, counters] : usage.by_caller) {
    std::printf("%-8s %9lld %9lld %9lld %11.6f\n", user.c_str(), static_cast<long long>(counters.successes),
                static_cast<long long>(counters.failures),
                static_cast<long long>(counters.prompt_tokens + counters.completion_tokens), counters.cost_usd);
  }
  std::printf("\n%s", llm.metrics().c_str());
  return 0;
}
