// Internal state of a Client, shared by the calls it runs.
#ifndef LLMGUARD_SRC_CLIENT_IMPL_H_
#define LLMGUARD_SRC_CLIENT_IMPL_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "credentials.h"
#include "health.h"
#include "ledger.h"
#include "limit_queue.h"
#include "limiter.h"
#include "llmguard/client.h"
#include "secrets.h"
#include "state/shared_state.h"
#include "user_rules.h"

namespace llmguard::internal {

class TargetState;  // providers/wire_api.h

// A target with everything resolved at create(): URL, credential, headers.
struct ResolvedTarget {
  Target config;
  std::string url;         // plain requests
  std::string stream_url;  // streamed requests
  Headers headers;         // auth first (unless `credentials` has it), then provider and caller headers
  std::string api_key;
  // A short-lived credential's cache, for a target with a credential source:
  // each attempt's auth headers come from it.
  std::shared_ptr<CredentialCache> credentials;
  // The wire API's own per-target state (AWS credentials for SigV4), handed
  // to WireApi::prepare_attempt for each attempt; null for most APIs.
  std::shared_ptr<const TargetState> api_state;
};

// `clock` times credentials' expiry.
Result<std::vector<ResolvedTarget>> resolve_targets(const std::vector<Target>& targets, Clock& clock = real_clock());

}  // namespace llmguard::internal

namespace llmguard {

class Call;

struct Client::Impl {
  ClientOptions options;  // immutable after create()
  std::vector<internal::ResolvedTarget> targets;
  std::vector<std::unique_ptr<internal::TargetHealth>> health;  // parallel to targets
  std::vector<std::optional<Price>> prices;                     // parallel to targets
  std::vector<internal::TargetLimiter> limiters;                // parallel; event-loop thread only
  // Parallel; event-loop thread only. Scales the output tokens a budget
  // reservation counts on, after the target billed more than max_tokens.
  std::vector<double> reserve_scale;

  // Calls waiting for a client-side limit. Shared: the transport's timers
  // hold it weakly and may outlive the client.
  std::shared_ptr<internal::LimitQueue> limit_queue;
  // Masks every configured credential (keys, key variables' values,
  // credential headers), in any case and cut short at a message's end.
  internal::Redactor redactor;
  // ClientOptions::log_level (or LLMGUARD_LOG) and the sink lines go to.
  LogLevel log_level = LogLevel::kOff;
  std::function<void(std::string_view)> log_sink;
  internal::UserRules classifier_rules;  // ClientOptions::classifier_rules, compiled
  internal::Ledger ledger;
  std::unique_ptr<internal::BudgetBook> budgets;
  std::shared_ptr<Transport> transport;
  bool owns_transport = false;
  // ClientOptions::shared_state; null: this process's state decides alone.
  // After `transport`: it posts to it, so it goes first.
  std::unique_ptr<internal::Fleet> fleet;
  Clock* clock = nullptr;
  RandomSource* random = nullptr;

  // Live calls, so that destroying the client can cancel and await them.
  std::mutex calls_mu;
  std::condition_variable calls_done;
  std::uint64_t next_call_id = 1;
  std::unordered_map<std::uint64_t, std::weak_ptr<Call>> live_calls;
};

}  // namespace llmguard

#endif  // LLMGUARD_SRC_CLIENT_IMPL_H_
