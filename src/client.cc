#include "llmguard/client.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <future>
#include <unordered_set>

#include "call.h"
#include "classify.h"
#include "client_impl.h"
#include "engine_log.h"
#include "metrics.h"
#include "providers/wire.h"
#include "providers/wire_api.h"
#include "secrets.h"
#include "state/redis_state.h"
#include "taxonomy.h"
#include "text.h"

namespace llmguard {
namespace internal {
namespace {

Error invalid(std::string message) { return make_error(ErrorCategory::kBadRequest, std::move(message)); }

// Whether `url`'s host is a loopback name or address.
bool on_this_machine(std::string_view url) {
  const std::size_t scheme = url.find("://");
  std::string_view host = url.substr(scheme == std::string_view::npos ? 0 : scheme + 3);
  host = host.substr(0, host.find_first_of("/?#"));
  if (const std::size_t at = host.rfind('@'); at != std::string_view::npos) host = host.substr(at + 1);
  if (host.starts_with("[")) return host.starts_with("[::1]");
  host = host.substr(0, host.find(':'));
  return iequals(host, "localhost") || host.starts_with("127.");
}

std::string_view trim_slashes(std::string_view url) {
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  return url;
}

}  // namespace

Result<std::vector<ResolvedTarget>> resolve_targets(const std::vector<Target>& targets, Clock& clock) {
  if (targets.empty()) return invalid("no targets: ClientOptions::targets needs at least one");
  std::vector<ResolvedTarget> out;
  std::unordered_set<std::string> names;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    ResolvedTarget r;
    r.config = targets[i];
    Target& c = r.config;
    if (c.name.empty()) c.name = c.model.empty() ? fmt::format("target{}", i) : c.model;
    if (!names.insert(c.name).second) return invalid(fmt::format("targets[{}]: duplicate name \"{}\"", i, c.name));
    if (c.model.empty()) return invalid(fmt::format("target \"{}\": model is empty", c.name));
    if (c.context_window && *c.context_window <= 0) {
      return invalid(fmt::format("target \"{}\": context_window must be positive", c.name));
    }
    const WireApi& api = wire_api(c.provider);
    std::optional<internal::CredentialFetch> source = credential_source_of(c);
    if (source && (!c.api_key.empty() || !c.api_key_env.empty())) {
      return invalid(
          fmt::format("target \"{}\": give api_key (or api_key_env) or a credential source, not both", c.name));
    }
    if (c.credential_source && !c.api_key_command.empty()) {
      return invalid(fmt::format("target \"{}\": give credential_source or api_key_command, not both", c.name));
    }
    if (source && (c.api_key_command_timeout.count() <= 0 || c.credential_ttl.count() <= 0)) {
      return invalid(fmt::format("target \"{}\": api_key_command_timeout and credential_ttl must be positive", c.name));
    }
    std::string base = c.base_url;
    std::string key = c.api_key;
    if (key.empty() && !c.api_key_env.empty()) key = first_env({c.api_key_env.c_str()});
    if (auto filled = api.fill_defaults(c, base, key); !filled.ok()) return std::move(filled).error();
    if (!istarts_with(base, "http://") && !istarts_with(base, "https://")) {
      return invalid(fmt::format("target \"{}\": base_url must start with http:// or https://", c.name));
    }
    // Sent without a key, a request to a service would only earn its 401; a
    // server on this machine (ollama, vLLM, ...) usually needs none.
    if (key.empty() && !c.api_key_env.empty() && !on_this_machine(base)) {
      return invalid(
          fmt::format("target \"{}\": api_key_env names {}, which is not set (or is empty)", c.name, c.api_key_env));
    }
    if (key.find_first_of("\r\n") != std::string::npos) {
      return invalid(fmt::format("target \"{}\": the API key contains a line break", c.name));
    }
    Endpoint endpoint = api.endpoint(c, trim_slashes(base), !key.empty() || source.has_value());
    r.url = std::move(endpoint.url);
    r.stream_url = std::move(endpoint.stream_url);
    if (source) {
      key.clear();  // the source's tokens, not the environment's key, authenticate this target
      r.credentials = std::make_shared<CredentialCache>(
          std::move(*source), c.credential_ttl, [&api](std::string_view token) { return api.token_headers(token); },
          clock);
    }
    if (!key.empty()) r.headers = api.credential_headers(key);
    r.headers.insert(r.headers.end(), endpoint.headers.begin(), endpoint.headers.end());
    r.api_state = std::move(endpoint.state);
    for (const auto& [name, value] : c.headers) {
      if (name.find_first_of("\r\n:") != std::string::npos || value.find_first_of("\r\n") != std::string::npos) {
        return invalid(fmt::format("target \"{}\": header \"{}\" has a line break or colon", c.name, name));
      }
      r.headers.emplace_back(name, value);
    }
    r.api_key = std::move(key);
    c.api_key.clear();  // the resolved copy is the only one kept
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace internal

namespace {

Status invalid(std::string message) { return Status(make_error(ErrorCategory::kBadRequest, std::move(message))); }

Status validate_retry(const RetryPolicy& r) {
  if (r.max_attempts < 1) return invalid("retry.max_attempts must be at least 1");
  if (r.max_attempts > 100) return invalid("retry.max_attempts must be at most 100");
  if (r.base_delay.count() < 0 || r.max_delay.count() < 0 || r.max_retry_after.count() < 0) {
    return invalid("retry delays must not be negative");
  }
  if (r.max_delay < r.base_delay) return invalid("retry.max_delay must not be below retry.base_delay");
  for (std::size_t i = 0; i < r.rules.size(); ++i) {
    const CategoryRule& rule = r.rules[i];
    const ErrorCategory c = rule.category;
    if (!internal::category_info(c).from_attempt) {
      return invalid(fmt::format("retry.rules[{}]: {} is decided before any attempt and has no rule", i, to_string(c)));
    }
    if (c == ErrorCategory::kContextOverflow && rule.action == OnFailure::kRetry) {
      return invalid(
          fmt::format("retry.rules[{}]: context_overflow is never retried unchanged (use shrink_messages)", i));
    }
    if (rule.max_attempts && *rule.max_attempts < 1) {
      return invalid(fmt::format("retry.rules[{}].max_attempts must be at least 1", i));
    }
  }
  return ok_status();
}

// Durations are added to clock readings and turned into nanoseconds and
// libcurl's longs; beyond a week they mean a mistake, and near their type's
// limits they overflow.
Status validate_durations(const ClientOptions& o) {
  const RetryPolicy& r = o.retry;
  if (o.timeouts.connect.count() <= 0 || o.timeouts.total.count() <= 0 || o.timeouts.idle.count() <= 0 ||
      o.timeouts.ttft.count() <= 0 || o.timeouts.reasoning_ttft.count() <= 0) {
    return invalid("timeouts must be positive");
  }
  if (o.deadline && o.deadline->count() <= 0) return invalid("deadline must be positive");
  if (o.breaker.open_for.count() < 0 || o.breaker.auth_cooldown.count() < 0 || o.breaker.quota_cooldown.count() < 0 ||
      o.breaker.model_not_found_cooldown.count() < 0) {
    return invalid("breaker durations must not be negative");
  }
  constexpr std::chrono::milliseconds kLongest = std::chrono::hours(24 * 7);
  const std::pair<std::string_view, std::chrono::milliseconds> durations[] = {
      {"retry.base_delay", r.base_delay},
      {"retry.max_delay", r.max_delay},
      {"retry.max_retry_after", r.max_retry_after},
      {"breaker.open_for", o.breaker.open_for},
      {"breaker.auth_cooldown", o.breaker.auth_cooldown},
      {"breaker.quota_cooldown", o.breaker.quota_cooldown},
      {"breaker.model_not_found_cooldown", o.breaker.model_not_found_cooldown},
      {"retry_budget.window", o.retry_budget.window},
      {"timeouts.connect", o.timeouts.connect},
      {"timeouts.total", o.timeouts.total},
      {"timeouts.idle", o.timeouts.idle},
      {"timeouts.ttft", o.timeouts.ttft},
      {"timeouts.reasoning_ttft", o.timeouts.reasoning_ttft},
      {"deadline", o.deadline.value_or(std::chrono::milliseconds(0))},
  };
  for (const auto& [name, value] : durations) {
    if (value > kLongest) return invalid(fmt::format("{} must be at most 7 days ({} ms)", name, kLongest.count()));
  }
  return ok_status();
}

Status validate_targets(const std::vector<Target>& targets) {
  for (const Target& t : targets) {
    const std::string_view name = t.name.empty() ? t.model : t.name;
    const Target::Limits& l = t.limits;
    if ((l.max_concurrency && *l.max_concurrency < 1) ||
        (l.requests_per_minute && !(*l.requests_per_minute > 0 && std::isfinite(*l.requests_per_minute))) ||
        (l.tokens_per_minute && *l.tokens_per_minute < 1)) {
      return invalid(fmt::format("target \"{}\": limits must be positive", name));
    }
    if (const auto& p = t.price) {
      auto bad = [](std::optional<double> rate) { return rate && !(*rate >= 0 && std::isfinite(*rate)); };
      if (bad(p->input_per_mtok) || bad(p->output_per_mtok) || bad(p->cached_input_per_mtok) ||
          bad(p->cache_write_per_mtok)) {
        return invalid(fmt::format("target \"{}\": prices must be finite and not negative", name));
      }
    }
  }
  return ok_status();
}

Status validate_budgets(const ClientOptions& o) {
  if (o.budget_default_max_tokens <= 0) return invalid("budget_default_max_tokens must be positive");
  for (std::size_t i = 0; i < o.budgets.size(); ++i) {
    const Budget& b = o.budgets[i];
    if (!b.usd && !b.tokens) return invalid(fmt::format("budgets[{}] sets neither usd nor tokens", i));
    if ((b.usd && !(*b.usd >= 0 && std::isfinite(*b.usd))) || (b.tokens && *b.tokens < 0)) {
      return invalid(fmt::format("budgets[{}] must not be negative", i));
    }
  }
  return ok_status();
}

Status validate(const ClientOptions& o) {
  for (Status part :
       {validate_retry(o.retry), validate_durations(o), validate_targets(o.targets), validate_budgets(o)}) {
    if (!part.ok()) return part;
  }
  if (o.breaker.failure_threshold < 0) return invalid("breaker.failure_threshold must not be negative");
  if (o.retry_budget.ratio < 0 || o.retry_budget.min_retries < 0 || o.retry_budget.window.count() < 1000) {
    return invalid("retry_budget needs ratio >= 0, min_retries >= 0 and a window of at least 1 s");
  }
  if (!std::isfinite(o.retry_budget.ratio)) return invalid("retry_budget.ratio must be a finite number");
  if (o.max_response_bytes == 0) return invalid("max_response_bytes must be positive");
  if (!o.ca_file.empty() && !std::ifstream(o.ca_file).good()) {
    return invalid(fmt::format("ca_file \"{}\" cannot be read", o.ca_file));
  }
  return ok_status();
}

// What the fleet tells this client. The hooks run on the loop thread and
// hold the client's state weakly: news may come as the client goes.
internal::RedisFleet::Hooks fleet_hooks(const std::shared_ptr<Client::Impl>& impl,
                                        std::function<void(const Event&)> on_event) {
  std::weak_ptr<Client::Impl> weak = impl;
  return {
      // The options' own copy: news may come before create() has stored them.
      .event = std::move(on_event),
      .breaker_opened =
          [weak](std::size_t target, ErrorCategory why, std::chrono::milliseconds left) {
            if (auto s = weak.lock()) s->health[target]->open_from_fleet(why, left, s->clock->now());
          },
      .breaker_reset =
          [weak](std::size_t target) {
            if (auto s = weak.lock()) s->health[target]->reset();
          },
      .slot_freed =
          [weak] {
            if (auto s = weak.lock()) s->limit_queue->wake();
          },
  };
}

}  // namespace

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Client>> Client::create(ClientOptions options) {
  if (auto s = validate(options); !s.ok()) return std::move(s).error();
  auto targets = internal::resolve_targets(options.targets, options.clock ? *options.clock : real_clock());
  if (!targets.ok()) return std::move(targets).error();
  auto rules = internal::UserRules::compile(options.classifier_rules);
  if (!rules.ok()) return std::move(rules).error();
  auto impl = std::make_shared<Impl>();
  impl->classifier_rules = std::move(*rules);
  // Before the keys are moved out of the options: every credential they name.
  impl->redactor = internal::Redactor(internal::credentials_of(options));
  impl->log_level = options.log_level ? *options.log_level : internal::log_level_from(std::getenv("LLMGUARD_LOG"));
  impl->log_sink = options.log_sink ? options.log_sink : internal::write_log_line_to_stderr;
  impl->targets = std::move(*targets);
  for (std::size_t i = 0; i < impl->targets.size(); ++i) {
    impl->health.push_back(std::make_unique<internal::TargetHealth>(options.breaker, options.retry_budget));
    const Target& t = impl->targets[i].config;
    impl->prices.push_back(t.price ? t.price : well_known_price(t.model));
  }
  impl->budgets = std::make_unique<internal::BudgetBook>(options.budgets);
  impl->reserve_scale.assign(impl->targets.size(), 1.0);
  for (auto& t : options.targets) t.api_key.clear();
  impl->clock = options.clock ? options.clock : &real_clock();
  for (const auto& t : impl->targets) impl->limiters.emplace_back(t.config.limits, impl->clock->now());
  impl->random = options.random ? options.random : &system_random();
  if (options.transport) {
    impl->transport = options.transport;
  } else {
    auto transport = make_curl_transport();
    if (!transport.ok()) return std::move(transport).error();
    impl->transport = std::move(*transport);
    impl->owns_transport = true;
  }
  impl->limit_queue = std::make_shared<internal::LimitQueue>(impl->transport, *impl->clock);
  if (options.shared_state) {
    auto fleet =
        internal::RedisFleet::create(*options.shared_state, options.targets, options.budgets, options.retry_budget,
                                     impl->transport, fleet_hooks(impl, options.on_event));
    if (!fleet.ok()) return std::move(fleet).error();
    for (const auto& open : (*fleet)->open_at_start()) {
      impl->health[open.target]->open_from_fleet(open.why, open.left, impl->clock->now());
    }
    impl->fleet = std::move(*fleet);
  }
  impl->options = std::move(options);
  impl->options.transport.reset();  // held once, in impl->transport
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::~Client() {
  std::vector<std::shared_ptr<Call>> calls;
  {
    std::lock_guard lock(impl_->calls_mu);
    for (auto& [id, weak] : impl_->live_calls) {
      if (auto call = weak.lock()) calls.push_back(std::move(call));
    }
  }
  for (auto& call : calls) call->cancel();
  calls.clear();
  // A credential command still running would hold the cancelled calls (and
  // so this client's thread and connections) until its own timeout.
  for (auto& target : impl_->targets) {
    if (target.credentials) target.credentials->stop();
  }
  // An injected transport may be driven by this very thread (a test's fake);
  // waiting for it could deadlock, and the calls co-own the state anyway.
  // On the loop thread nothing can be awaited either: the last call frees
  // the state when it has finished.
  Transport& transport = *impl_->transport;
  if (!impl_->owns_transport || transport.in_loop_thread()) return;
  {
    std::unique_lock lock(impl_->calls_mu);
    impl_->calls_done.wait(lock, [&] { return impl_->live_calls.empty(); });
  }
  // The callbacks that finished the calls still hold them until they return;
  // one more turn of the loop and this is the last reference, so the loop
  // thread is joined here rather than left to exit on its own.
  // The posted task co-owns the promise: set_value may still be running when
  // the wait returns.
  auto drained = std::make_shared<std::promise<void>>();
  auto turned = drained->get_future();
  transport.post([drained] { drained->set_value(); });
  turned.wait();
}

void Client::guarded_chat_async(ChatRequest request, CallOptions options,
                                std::function<void(Result<ChatResponse>)> done) {
  std::shared_ptr<Call> call;
  {
    std::lock_guard lock(impl_->calls_mu);
    const std::uint64_t id = impl_->next_call_id++;
    call = std::make_shared<Call>(impl_, id, nullptr, std::move(request), std::move(options), std::move(done));
    impl_->live_calls.emplace(id, call);
  }
  call->start();
}

UsageSnapshot Client::usage() const { return impl_->ledger.snapshot(); }

std::string Client::metrics(const PrometheusOptions& options) const {
  std::string text =
      usage().to_prometheus(options) + internal::budget_metrics(budgets()) + internal::breaker_metrics(health());
  if (impl_->fleet) {
    const internal::Fleet::Stats fleet = impl_->fleet->stats();
    text += internal::shared_state_metrics(fleet.reachable, fleet.round_trips, fleet.scripts);
  }
  return text;
}

std::vector<Client::BudgetState> Client::budgets() const { return impl_->budgets->states(impl_->clock->wall_now()); }

std::vector<Client::TargetHealth> Client::health() const {
  std::vector<TargetHealth> out;
  const auto now = impl_->clock->now();
  for (std::size_t i = 0; i < impl_->targets.size(); ++i) {
    TargetHealth h = impl_->health[i]->snapshot(now);
    h.target = impl_->targets[i].config.name;
    out.push_back(std::move(h));
  }
  return out;
}

void Client::reset_target(std::string_view name) {
  for (std::size_t i = 0; i < impl_->targets.size(); ++i) {
    if (impl_->targets[i].config.name != name) continue;
    impl_->health[i]->reset();
    if (impl_->fleet) impl_->fleet->reset(i);
  }
}

Result<ChatResponse> Client::guarded_chat(const ChatRequest& request, const CallOptions& options) {
  if (impl_->transport->in_loop_thread()) {
    return make_error(ErrorCategory::kBadRequest,
                      "guarded_chat() called on the llmguard event-loop thread; use guarded_chat_async() there");
  }
  // The callback co-owns the promise: set_value may still be returning on the
  // loop thread after this frame's wait has ended.
  auto promise = std::make_shared<std::promise<Result<ChatResponse>>>();
  auto future = promise->get_future();
  std::shared_ptr<Call> call;
  {
    std::lock_guard lock(impl_->calls_mu);
    const std::uint64_t id = impl_->next_call_id++;
    // The request is borrowed: this frame outlives the call.
    call = std::make_shared<Call>(impl_, id, &request, std::nullopt, options,
                                  [promise](Result<ChatResponse> r) { promise->set_value(std::move(r)); });
    impl_->live_calls.emplace(id, call);
  }
  call->start();
  call.reset();
  return future.get();
}

}  // namespace llmguard
