// The option vocabulary of a Client: targets (where a call can go), the
// policies that guard them, budgets, timeouts and the seams for tests. Plain
// structs, validated by Client::create; immutable once the client is built.
// CallOptions, at the end, are what one guarded_chat() call adds.
//
//   llmguard::ClientOptions options;
//   options.targets.push_back({.name = "primary", .model = "gpt-4o-mini"});
//   options.retry.max_attempts = 4;
//   options.budgets.push_back({.period = llmguard::Budget::Period::kDay, .usd = 5.0});
#ifndef LLMGUARD_OPTIONS_H_
#define LLMGUARD_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmguard/cancellation.h"
#include "llmguard/error.h"
#include "llmguard/runtime.h"
#include "llmguard/types.h"

namespace llmguard {

enum class Provider : std::uint8_t {
  kOpenAI,     // OpenAI and every OpenAI-compatible server (vLLM, Ollama, ...)
  kAzure,      // Azure OpenAI: deployment URL, `api-key` header, api-version
  kAnthropic,  // Anthropic Messages API
  kGemini,     // Gemini's own API (Google AI Studio): generateContent, key in x-goog-api-key
  kVertex,     // Gemini on Vertex AI: the same body at a project's URL, with a bearer token
  kBedrock,    // Amazon Bedrock's Converse API, signed with AWS SigV4 (or a Bedrock API key)
};
std::string_view to_string(Provider provider) noexcept;
std::optional<Provider> parse_provider(std::string_view name) noexcept;

// USD per million tokens.
struct Price {
  double input_per_mtok = 0;
  double output_per_mtok = 0;
  std::optional<double> cached_input_per_mtok;  // cache reads; defaults to input price
  std::optional<double> cache_write_per_mtok;   // cache writes; defaults to input price
};
// A spending limit, enforced with reservations taken before each attempt
// (see docs/usage.md): concurrent calls cannot overrun it.
struct Budget {
  enum class Period : std::uint8_t { kTotal, kHour, kDay, kMonth };  // UTC calendar periods
  std::string caller_tag;  // "" = every call; else only calls with this ChatRequest::caller_tag
  Period period = Period::kTotal;
  std::optional<double> usd;           // settled + reserved cost may not exceed this
  std::optional<std::int64_t> tokens;  // settled + reserved tokens may not exceed this
};

// One place a call can be sent: a provider endpoint, a model and a credential.
// A credential as a credential source returns it.
struct Credential {
  std::string token;
  // When it stops being valid; nullopt: unknown (Target::credential_ttl applies).
  std::optional<std::chrono::system_clock::time_point> expires_at;
};
// Returns a fresh credential, or an error (its message must not contain a
// secret). Called on a background thread; may block, up to
// Target::api_key_command_timeout.
using CredentialSource = std::function<Result<Credential>()>;

struct Target {
  std::string name;  // unique within the client; shown in trails and usage
  Provider provider = Provider::kOpenAI;
  // API root including its version path, e.g. "https://api.openai.com/v1".
  // Empty: OPENAI_BASE_URL / OPENAI_API_BASE for OpenAI, ANTHROPIC_BASE_URL
  // (with or without "/v1") for Anthropic, else the provider's public
  // endpoint. For Azure, the resource endpoint.
  std::string base_url;
  std::string model;  // for Azure, the deployment name
  // The credential. Empty: read from `api_key_env`, else from the provider's
  // usual variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, AZURE_OPENAI_API_KEY).
  // With no key at all no auth header is sent (local servers need none).
  std::string api_key;
  std::string api_key_env;
  std::string api_version;  // Azure "api-version"; Anthropic "anthropic-version"
  // Vertex AI: the Google Cloud project and location ("us-central1",
  // "global"). Empty: GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION.
  std::string project;
  std::string location;
  // Bedrock: the AWS region ("us-east-1"). Empty: AWS_REGION, else AWS_DEFAULT_REGION.
  std::string region;
  Headers headers;                             // extra request headers
  std::optional<std::int64_t> context_window;  // tokens; nullopt = unknown
  std::optional<Price> price;
  // Client-side limits, so that calls stay within what the provider allows
  // instead of learning it from 429s. A target at a limit is passed over
  // (trail: skipped rate_limit); when every target is, the call waits for the
  // first to free up, within its deadline.
  struct Limits {
    std::optional<int> max_concurrency;             // attempts in flight
    std::optional<double> requests_per_minute;      // halved after each 429, recovering on success
    std::optional<std::int64_t> tokens_per_minute;  // estimated prompt + max_tokens, as providers count
  } limits;
  // A short-lived credential (Vertex AI's access tokens, Azure Entra ID,
  // gateways with rotating tokens) in place of `api_key`: from a callback
  // in code, or from a command's standard output (run without a shell, e.g.
  // {"gcloud", "auth", "print-access-token"}). Fetched on a thread of its
  // own, never the event loop; kept until shortly before it expires (or for
  // `credential_ttl` when its expiry is unknown); fetched once more after a
  // 401 or 403 before the target is failed over. Never logged.
  CredentialSource credential_source;
  std::vector<std::string> api_key_command;
  std::chrono::milliseconds api_key_command_timeout{10'000};
  std::chrono::milliseconds credential_ttl{300'000};
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
    kAttemptFailed,         // `category`, `http_status`, `message`
    kRetryScheduled,        // `delay`
    kRetryBudgetExhausted,  // the retry was refused; the call moves on
    kFallback,              // leaving `target` because of `category`
    kTargetSkipped,         // passed over without a request, for `category`
    kBreakerOpened,         // `delay` = how long the target stays out
    kBreakerClosed,
    // A reply billed more than its budget reservation covered (`message`
    // says how much); the budgets' overrun counters grew by the excess.
    kBudgetOverrun,
    // The shared state (ClientOptions::shared_state) cannot be reached or
    // refused a command (`message` says why, naming Redis, never its
    // password); and reached again. Not tied to a call: `attempt` is 0.
    kSharedStateUnavailable,
    kSharedStateRestored,
  };
  Kind kind = Kind::kAttemptStarted;
  std::string_view target;
  std::optional<ErrorCategory> category;
  int http_status = 0;
  std::chrono::milliseconds delay{0};
  std::string_view message;
  std::string_view caller_tag;
  // kRetryScheduled, kFallback, kRetryBudgetExhausted: why the call moved on.
  std::optional<StepReason> reason;
  // The call's attempts sent so far, this event's own included (0 before the
  // first): kAttemptStarted's number, and the attempt a retry or a fallback
  // follows.
  int attempt = 0;
};
std::string_view to_string(Event::Kind kind) noexcept;

// How much the client writes to its log (ClientOptions::log_level).
enum class LogLevel : std::uint8_t {
  kOff,
  // A line per attempt (call id, attempt number, target, model, status,
  // category, wait before it, duration, what came next and why) and one per
  // call (outcome, tokens, cost; the error's category and message).
  kInfo,
  kDebug,  // and a line per engine Event: retries, skips, fallbacks, breakers, budget overruns
};

struct Timeouts {
  std::chrono::milliseconds connect{10'000};
  std::chrono::milliseconds total{120'000};  // bounds one attempt
  // The attempt fails as a timeout when no byte arrives for this long.
  std::chrono::milliseconds idle{60'000};
  // Streaming only: the attempt fails as a timeout when no content delta
  // (text or a tool-call fragment) has arrived this long after it started.
  // 15 s: an interactive agent would rather try the next target than wait
  // on a stuck provider for a minute...
  std::chrono::milliseconds ttft{15'000};
  // ...except for reasoning models (o1/o3/o4, gpt-5, deepseek-reasoner, R1,
  // QwQ, *thinking*), which think before their first token: they get this.
  std::chrono::milliseconds reasoning_ttft{180'000};
};
// Whether `model` names a reasoning model (for Timeouts::reasoning_ttft).
bool is_reasoning_model(std::string_view model) noexcept;

// A classification rule of your own, tried before the built-in ones: for a
// company gateway's wording, or a provider whose errors the built-ins read
// wrong. A rule holds when every condition it sets holds; the first rule
// that holds decides the category, and its id becomes Error::rule.
struct ClassifierRule {
  std::string id;                                    // required; reported as Error::rule
  ErrorCategory category = ErrorCategory::kUnknown;  // one an attempt can end with
  std::optional<int> status;                         // only at this HTTP status
  // Any of these words (case, punctuation and camelCase ignored; matched at
  // word starts, so "token" also finds "tokens"). Searched in the error's
  // code, type and message, or in `json_pointer`'s or `header`'s value.
  std::vector<std::string> words;
  std::string json_pointer;  // RFC 6901 path into a JSON body: "/error/code"
  std::string header;        // a response header's name
  // A JSON pointer to the delay in seconds the reply asks for, used when no
  // retry-after header gives one: "/error/retry_after".
  std::string delay_field;
};

// Budgets, client-side limits and breakers shared by every client, in any
// process on any host, that names the same Redis and namespace (see
// docs/fleet.md). Without it, each client keeps its own.
struct SharedState {
  // redis://[[user]:password@]host[:port][/db] or
  // unix://[[user]:password@]/path/redis.sock[?db=N]. TLS (rediss://) is
  // not available: Debian's hiredis is built without it.
  std::string redis_url;
  // A variable holding the password, for a URL without one.
  std::string password_env;
  std::string name_space = "default";  // keys are llmguard:{name_space}:...; no braces
  enum class OnUnavailable : std::uint8_t {
    kLocal,  // go on with this process's own state, say so (Event), reconnect in the background
    kFail,   // end calls at once with kConnection, naming Redis
  };
  OnUnavailable on_unavailable = OnUnavailable::kLocal;
  // A concurrency slot or a budget reservation of a process that dies comes
  // back this long after its last renewal; live calls renew theirs.
  std::chrono::milliseconds lease_ttl{10000};
  // Each Redis round trip's limit (and never past the call's deadline).
  std::chrono::milliseconds command_timeout{250};
};

struct ClientOptions {
  std::vector<Target> targets;  // the fallback chain, in order
  // Tried in order before the built-in classifier; see ClassifierRule.
  std::vector<ClassifierRule> classifier_rules;
  // Shares budgets, limits and breakers across a fleet; nullopt: in process.
  std::optional<SharedState> shared_state;
  RetryPolicy retry;
  BreakerPolicy breaker;
  RetryBudget retry_budget;
  std::vector<Budget> budgets;
  // Under a budget, a request without max_tokens is sent with this many, so
  // that its reservation bounds what it can spend.
  std::int64_t budget_default_max_tokens = 4096;
  std::function<void(const Event&)> on_event;
  // Log lines in logfmt (`llmguard call=3 attempt=1 target=primary ...`),
  // every credential masked. Unset: the LLMGUARD_LOG environment variable
  // ("info", "debug"; anything else, or unset, is off), read at create().
  std::optional<LogLevel> log_level;
  // Where the lines go, one call per line without its newline, on the event
  // loop thread (do not block). Unset: standard error, a line at a time.
  std::function<void(std::string_view line)> log_sink;
  Timeouts timeouts;
  // Bounds a whole call across all attempts and targets; passing it ends the
  // call with kTimeout. nullopt: bounded only by the attempts.
  std::optional<std::chrono::milliseconds> deadline;
  // Bounds every reply, whole or streamed (an endless stream is cut with a
  // kTransient error), and so also Error::partial_content.
  std::size_t max_response_bytes = 32u << 20;
  // The client-wide default of CallOptions::restart_stream_on_failure: for
  // agents, which want a complete answer (from the fallback if need be)
  // rather than a partial one. Chat UIs that show text as it comes keep it
  // off, or handle StreamDelta::Kind::kRestart.
  bool restart_streams_on_failure = false;
  bool verify_tls = true;
  // A PEM file of certificates to trust instead of the system's, for
  // gateways behind a TLS-inspecting proxy or a private CA. Must exist.
  std::string ca_file;
  // Seams for tests; null means the real ones.
  std::shared_ptr<Transport> transport;
  Clock* clock = nullptr;
  RandomSource* random = nullptr;
};

// Per call: what guarded_chat() takes beside the request.
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
  // ...unless this is set (or ClientOptions::restart_streams_on_failure):
  // then the call starts over on the next target (on the same one when it is
  // the last) after passing a StreamDelta::Kind::kRestart, so the caller
  // gets one complete answer. Partial output is never sent back to a model
  // as a prefill. Agents want this; chat UIs may prefer partial_content.
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

}  // namespace llmguard

#endif  // LLMGUARD_OPTIONS_H_
