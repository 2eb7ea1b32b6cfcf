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

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmguard/error.h"
#include "llmguard/runtime.h"
#include "llmguard/types.h"
#include "llmguard/usage.h"

namespace llmguard {

enum class Provider : std::uint8_t {
  kOpenAI,     // OpenAI and every OpenAI-compatible server (vLLM, Ollama, ...)
  kAzure,      // Azure OpenAI: deployment URL, `api-key` header, api-version
  kAnthropic,  // Anthropic Messages API
};
std::string_view to_string(Provider provider) noexcept;
std::optional<Provider> parse_provider(std::string_view name) noexcept;

// Where a service that speaks one of the APIs above lives: "gemini", "groq",
// "mistral", "deepseek", "together", "fireworks", "openrouter", "xai",
// "ollama", "lmstudio", "llamacpp", "vllm", "litellm" (and "openai",
// "anthropic", "azure"). Config files accept these names as "provider"; in
// code, copy the fields into a Target. Each has its own key variable, so a
// local server is never sent OPENAI_API_KEY.
struct ProviderPreset {
  Provider provider = Provider::kOpenAI;
  std::string_view base_url;     // "" for azure (per resource)
  std::string_view api_key_env;  // e.g. "GROQ_API_KEY"
};
std::optional<ProviderPreset> provider_preset(std::string_view name) noexcept;

// USD per million tokens.
struct Price {
  double input_per_mtok = 0;
  double output_per_mtok = 0;
  std::optional<double> cached_input_per_mtok;  // cache reads; defaults to input price
  std::optional<double> cache_write_per_mtok;   // cache writes; defaults to input price
};
// The price of a well-known model by name (dated and "-latest" variants
// included), from the providers' published tables; nullopt when unknown.
std::optional<Price> well_known_price(std::string_view model);

// A spending limit, enforced with reservations taken before each attempt
// (see docs/usage.md): concurrent calls cannot overrun it.
struct Budget {
  enum class Period : std::uint8_t { kTotal, kHour, kDay, kMonth };  // UTC calendar periods
  std::string caller_tag;  // "" = every call; else only calls with this ChatRequest::caller_tag
  Period period = Period::kTotal;
  std::optional<double> usd;             // settled + reserved cost may not exceed this
  std::optional<std::int64_t> tokens;    // settled + reserved tokens may not exceed this
};

// One place a call can be sent: a provider endpoint, a model and a credential.
struct Target {
  std::string name;  // unique within the client; shown in trails and usage
  Provider provider = Provider::kOpenAI;
  // API root including its version path, e.g. "https://api.openai.com/v1".
  // Empty: OPENAI_BASE_URL / OPENAI_API_BASE for OpenAI, else the provider's
  // public endpoint. For Azure, the resource endpoint.
  std::string base_url;
  std::string model;  // for Azure, the deployment name
  // The credential. Empty: read from `api_key_env`, else from the provider's
  // usual variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, AZURE_OPENAI_API_KEY).
  // With no key at all no auth header is sent (local servers need none).
  std::string api_key;
  std::string api_key_env;
  std::string api_version;  // Azure "api-version"; Anthropic "anthropic-version"
  Headers headers;          // extra request headers
  std::optional<std::int64_t> context_window;  // tokens; nullopt = unknown
  std::optional<Price> price;
  // Client-side limits, so that calls stay within what the provider allows
  // instead of learning it from 429s. A target at a limit is passed over
  // (trail: skipped rate_limit); when every target is, the call waits for the
  // first to free up, within its deadline.
  struct Limits {
    std::optional<int> max_concurrency;               // attempts in flight
    std::optional<double> requests_per_minute;        // halved after each 429, recovering on success
    std::optional<std::int64_t> tokens_per_minute;    // estimated prompt + max_tokens, as providers count
  } limits;
};

enum class Jitter : std::uint8_t { kFull, kEqual, kDecorrelated, kNone };

// What a failed attempt of some category makes the call do.
enum class OnFailure : std::uint8_t {
  kRetry,       // retry this target (backoff, or the provider's delay up to the cap), then the next
  kNextTarget,  // go to the next target at once
  kFail,        // end the call with this error
};

// Replaces the default action (docs/errors.md) for one category, e.g.
// {kContentFilter, kNextTarget} to try a provider with another policy, or
// {kRateLimit, kNextTarget} to never wait on a throttled target.
struct CategoryRule {
  ErrorCategory category = ErrorCategory::kUnknown;
  OnFailure action = OnFailure::kRetry;
  // kRetry only: tries per target for this category; default max_attempts.
  std::optional<int> max_attempts;
};

struct RetryPolicy {
  int max_attempts = 3;  // tries per target, the first included
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{20'000};
  Jitter jitter = Jitter::kFull;
  // A provider-requested delay above this means: fall back at once.
  std::chrono::milliseconds max_retry_after{30'000};
  // Overrides of the default action per category; a later rule for the same
  // category wins. Only categories that come from an attempt can be
  // overridden (not cancelled, budget_exceeded or circuit_open), and
  // context_overflow is never retried unchanged (kRetry is refused).
  std::vector<CategoryRule> rules;
};

// Per-target circuit breaker: after `failure_threshold` consecutive
// transient/timeout/connection failures the target is skipped for
// `open_for`, then one probe call decides (half-open). Auth, quota and
// model-not-found failures take the target out for their own, longer times.
struct BreakerPolicy {
  int failure_threshold = 5;  // 0 disables the breaker
  std::chrono::milliseconds open_for{30'000};
  std::chrono::milliseconds auth_cooldown{300'000};
  std::chrono::milliseconds quota_cooldown{300'000};
  std::chrono::milliseconds model_not_found_cooldown{3'600'000};
};

// Retry budget per target, as gRPC retry throttling and Envoy retry budgets
// do: within a sliding `window`, retries may not exceed `ratio` of the
// requests plus `min_retries`, so a fleet cannot multiply an outage's load.
struct RetryBudget {
  double ratio = 0.2;
  int min_retries = 10;
  std::chrono::milliseconds window{10'000};
};

// What the engine did, for logs and metrics. Passed to
// ClientOptions::on_event on the event-loop thread; do not block in it.
struct Event {
  enum class Kind : std::uint8_t {
    kAttemptStarted,
    kAttemptFailed,        // `category`, `http_status`, `message`
    kRetryScheduled,       // `delay`
    kRetryBudgetExhausted, // the retry was refused; the call moves on
    kFallback,             // leaving `target` because of `category`
    kTargetSkipped,        // passed over without a request, for `category`
    kBreakerOpened,        // `delay` = how long the target stays out
    kBreakerClosed,
    // A reply billed more than its budget reservation covered (`message`
    // says how much); the budgets' overrun counters grew by the excess.
    kBudgetOverrun,
  };
  Kind kind = Kind::kAttemptStarted;
  std::string_view target;
  std::optional<ErrorCategory> category;
  int http_status = 0;
  std::chrono::milliseconds delay{0};
  std::string_view message;
  std::string_view caller_tag;
};
std::string_view to_string(Event::Kind kind) noexcept;

struct Timeouts {
  std::chrono::milliseconds connect{10'000};
  std::chrono::milliseconds total{120'000};  // bounds one attempt
  // The attempt fails as a timeout when no byte arrives for this long.
  std::chrono::milliseconds idle{60'000};
  // Streaming only: the attempt fails as a timeout when no content delta
  // (text or a tool-call fragment) has arrived this long after it started.
  std::chrono::milliseconds ttft{60'000};
};

struct ClientOptions {
  std::vector<Target> targets;  // the fallback chain, in order
  RetryPolicy retry;
  BreakerPolicy breaker;
  RetryBudget retry_budget;
  std::vector<Budget> budgets;
  // Under a budget, a request without max_tokens is sent with this many, so
  // that its reservation bounds what it can spend.
  std::int64_t budget_default_max_tokens = 4096;
  std::function<void(const Event&)> on_event;
  Timeouts timeouts;
  // Bounds a whole call across all attempts and targets; passing it ends the
  // call with kTimeout. nullopt: bounded only by the attempts.
  std::optional<std::chrono::milliseconds> deadline;
  std::size_t max_response_bytes = 32u << 20;
  bool verify_tls = true;
  // A PEM file of certificates to trust instead of the system's, for
  // gateways behind a TLS-inspecting proxy or a private CA. Must exist.
  std::string ca_file;
  // Seams for tests; null means the real ones.
  std::shared_ptr<Transport> transport;
  Clock* clock = nullptr;
  RandomSource* random = nullptr;
};

// Lets another thread stop a call. Copies share one state. Thread-safe.
class CancellationToken {
 public:
  CancellationToken();
  void cancel() const;
  bool cancelled() const noexcept;

  struct State;  // defined in the implementation
  const std::shared_ptr<State>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<State> state_;
};

struct CallOptions {
  std::optional<CancellationToken> cancellation;
  // Overrides ClientOptions::deadline for this call.
  std::optional<std::chrono::milliseconds> deadline;
  // Streams the reply: each delta is passed here as it arrives, on the event
  // loop thread (do not block in it). The returned ChatResponse still holds
  // the whole reply. Retries and fallbacks happen only before the first delta
  // reaches this callback; a failure after it ends the call, with the text so
  // far in Error::partial_content...
  std::function<void(const StreamDelta&)> on_delta;
  // ...unless this is set: then the call starts over (retry or fallback as
  // usual) after passing a StreamDelta::Kind::kRestart. Partial output is
  // never sent back to a model as a prefill.
  bool restart_stream_on_failure = false;
  // On context_overflow the call first hands the messages and the error here.
  // Return shorter messages (older turns dropped, tool output summarised) to
  // retry them on the same target, or nullopt to fall back to a target with
  // a larger context window as usual. Called at most `max_shrinks` times per
  // call, on the event-loop thread: do not block, do not throw.
  std::function<std::optional<std::vector<Message>>(const std::vector<Message>& messages, const Error& error)>
      shrink_messages;
  int max_shrinks = 2;
};

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
  void guarded_chat_async(ChatRequest request, CallOptions options,
                          std::function<void(Result<ChatResponse>)> done);

  struct TargetHealth {
    std::string target;
    enum class State : std::uint8_t { kClosed, kOpen, kHalfOpen } state = State::kClosed;
    int consecutive_failures = 0;
    std::chrono::milliseconds reopens_in{0};  // for kOpen
    std::optional<ErrorCategory> opened_by;
  };
  // Usage so far, from every attempt of every call (see llmguard/usage.h).
  UsageSnapshot usage() const;
  struct BudgetState {
    Budget budget;
    double spent_usd = 0, reserved_usd = 0;
    std::int64_t spent_tokens = 0, reserved_tokens = 0;
    // What replies billed beyond their reservations this period (included
    // in spent_*): the only way spent can pass the limit (docs/usage.md).
    double overrun_usd = 0;
    std::int64_t overrun_tokens = 0;
  };
  // Each budget's current period.
  std::vector<BudgetState> budgets() const;

  // A snapshot of every target's breaker, in chain order.
  std::vector<TargetHealth> health() const;
  // Closes a target's breaker at once (after fixing its key, say).
  void reset_target(std::string_view name);

  struct Impl;

 private:
  explicit Client(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // co-owned by the calls in flight
};

}  // namespace llmguard

#endif  // LLMGUARD_CLIENT_H_
