// The entry point: a `Client` holds an immutable chain of targets and the
// policies that guard calls to them; `guarded_chat()` runs one chat call
// through that chain.
//
//   llmguard::ClientOptions options;
//   options.targets.push_back({.name = "primary", .model = "gpt-4o-mini"});
//   options.targets.push_back({.name = "backup", .provider = llmguard::Provider::kAnthropic,
//                              .model = "claude-3-5-haiku-latest"});
//   auto client = llmguard::Client::create(std::move(options));
//   if (!client.ok()) { /* client.error() says which option is wrong */ }
//   llmguard::ChatRequest request;
//   request.messages.push_back(llmguard::Message::user("Hello"));
//   auto reply = (*client)->guarded_chat(request);
//   if (reply.ok()) use(reply->content); else log(llmguard::describe(reply.error()));
#ifndef LLMGUARD_CLIENT_H_
#define LLMGUARD_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "llmguard/cancellation.h"
#include "llmguard/error.h"
#include "llmguard/options.h"
#include "llmguard/providers.h"
#include "llmguard/types.h"
#include "llmguard/usage.h"

namespace llmguard {

// Thread-safe: any number of threads may call `guarded_chat` on one client.
// Configuration is fixed at `create`.
class Client {
 public:
  // Validates the options (a clear kBadRequest error names the bad field) and
  // starts the event loop (unless a transport is injected).
  static Result<std::unique_ptr<Client>> create(ClientOptions options);
  // Cancels every call still running: each ends with kCancelled. With the
  // client's own event loop, returns once their `done` callbacks have run
  // (or at once when called on the loop thread, from a callback: the loop
  // then frees the client's state when its last call has finished). With an
  // injected transport, the cancelled calls finish when that transport runs
  // them; they keep what they need alive until then.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs the call to completion and returns its response or error. Blocks the
  // calling thread, not the event loop; must not be called from a callback
  // running on the loop (that returns kBadRequest instead of deadlocking).
  Result<ChatResponse> guarded_chat(const ChatRequest& request, const CallOptions& options = {});

  // Starts the call and returns at once; `done` runs exactly once, on the
  // event-loop thread, and must not block.
  void guarded_chat_async(ChatRequest request, CallOptions options, std::function<void(Result<ChatResponse>)> done);

  using TargetHealth = llmguard::TargetHealth;
  // Usage so far, from every attempt of every call (see llmguard/usage.h).
  UsageSnapshot usage() const;
  using BudgetState = llmguard::BudgetState;
  // Each budget's current period.
  std::vector<BudgetState> budgets() const;

  // A snapshot of every target's breaker, in chain order.
  std::vector<TargetHealth> health() const;
  // Prometheus text for a /metrics endpoint: usage() as
  // UsageSnapshot::to_prometheus, each budget's limit, spent, reserved and
  // overrun this period (llmguard_budget_*), and each breaker's state
  // (llmguard_breaker_state, llmguard_breaker_consecutive_failures).
  std::string metrics(const PrometheusOptions& options = {}) const;
  // Closes a target's breaker at once (after fixing its key, say).
  void reset_target(std::string_view name);

  struct Impl;

 private:
  explicit Client(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // co-owned by the calls in flight
};

}  // namespace llmguard

#endif  // LLMGUARD_CLIENT_H_
