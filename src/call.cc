#include "call.h"

#include <fmt/format.h>

#include <algorithm>

#include "cancellation.h"
#include "classify.h"
#include "codec.h"
#include "policy.h"
#include "providers/wire_api.h"
#include "stream.h"
#include "text.h"

namespace llmguard {

using std::chrono::milliseconds;

Call::Call(std::shared_ptr<Client::Impl> client, std::uint64_t id, const ChatRequest* request,
           std::optional<ChatRequest> owned, CallOptions options, Done done)
    : client_state_(std::move(client)),
      client_(*client_state_),
      id_(id),
      owned_request_(std::move(owned)),
      request_(owned_request_ ? *owned_request_ : *request),
      options_(std::move(options)),
      done_(std::move(done)),
      budgeted_(client_.budgets->applies_to(request_.caller_tag)),
      budget_(*client_.budgets, request_.caller_tag),
      deadline_limit_(resolve_deadline(options_.deadline, client_.options.deadline)),
      streaming_(static_cast<bool>(options_.on_delta)) {}

milliseconds Call::first_token_timeout() const {
  const Timeouts& t = client_.options.timeouts;
  return is_reasoning_model(target().config.model) ? t.reasoning_ttft : t.ttft;
}

std::optional<milliseconds> Call::resolve_deadline(std::optional<milliseconds> per_call,
                                                   std::optional<milliseconds> per_client) {
  // A per-call deadline is not validated at create(): one at or below zero
  // has already passed, and one beyond a week is held to a week, as
  // ClientOptions are (clock arithmetic near the type's limits overflows).
  const auto limit = per_call ? per_call : per_client;
  if (!limit) return std::nullopt;
  return std::clamp(*limit, milliseconds(0), milliseconds(std::chrono::hours(24 * 7)));
}

milliseconds Call::since(SteadyTime t) const {
  return std::chrono::duration_cast<milliseconds>(client_.clock->now() - t);
}

void Call::redact(Error& error) const {
  // Every field a provider (or a proxy echoing the request) fills: a key can
  // come back in a code or a type as well as in the message.
  const internal::Redactor& configured = client_.redactor;
  // Tokens from a credential source come after create(): they are masked too.
  std::optional<internal::Redactor> fetched;
  if (const auto& credentials = target().credentials) fetched.emplace(credentials->tokens_seen());
  for (std::string* field : {&error.message, &error.provider_code, &error.provider_type, &error.hint}) {
    if (field->empty()) continue;
    *field = configured.redact(internal::redact_secrets(*field));
    if (fetched) *field = fetched->redact(*field);
  }
}

void Call::record_skip(std::size_t target, ErrorCategory why, std::string_view message) {
  // A call waiting for limits goes through the chain again and again; its
  // trail and events say each reason for passing a target over once.
  if (skips_recorded_.empty()) skips_recorded_.resize(client_.targets.size(), 0);
  const std::uint32_t bit = 1u << static_cast<unsigned>(why);
  if (skips_recorded_[target] & bit) return;
  skips_recorded_[target] |= bit;
  const std::string& name = client_.targets[target].config.name;
  trail_.push_back({.target = name, .skipped = why});
  emit({.kind = Event::Kind::kTargetSkipped, .target = name, .category = why, .message = message});
  log_trail(false);
}

void Call::start() {
  auto self = shared_from_this();
  if (options_.cancellation) {
    cancel_registration_ = options_.cancellation->state()->subscribe([weak = weak_from_this()] {
      if (auto call = weak.lock()) call->cancel();
    });
  }
  client_.transport->post([self] {
    self->call_start_ = self->client_.clock->now();
    if (const auto limit = self->deadline_limit_) {
      if (limit->count() == 0) {
        self->finish_past_deadline();
        return;
      }
      self->deadline_ = self->client_.clock->now() + *limit;
      self->deadline_timer_ = self->client_.transport->schedule(*limit, [self] { self->on_deadline(); });
    }
    if (self->options_.cancellation && self->options_.cancellation->cancelled()) {
      self->finish(make_error(ErrorCategory::kCancelled, "cancelled by the caller"));
      return;
    }
    self->enter_target(0, nullptr);
  });
}

void Call::cancel() {
  if (client_.transport->in_loop_thread()) {
    cancel_on_loop();
  } else {
    client_.transport->post([self = shared_from_this()] { self->cancel_on_loop(); });
  }
}

void Call::cancel_on_loop() {
  if (finished_) return;
  finish(make_error(ErrorCategory::kCancelled, "cancelled by the caller"));
}

void Call::begin_attempt() {
  if (finished_) return;
  if (options_.cancellation && options_.cancellation->cancelled()) {
    finish(make_error(ErrorCategory::kCancelled, "cancelled by the caller"));
    return;
  }
  if (const auto& credentials = target().credentials) {
    auto headers = credentials->current();
    if (!headers) {
      await_credential();
      return;
    }
    attempt_credential_ = std::move(*headers);
  }
  if (!admit_attempt()) return;
  holding_limit_slot_ = true;
  if (client_.fleet && client_.fleet->involved(target_index_, budgeted_)) {
    ask_fleet();
    return;
  }
  send_attempt();
}

void Call::send_attempt() {
  leave_line(/*went=*/true);
  if (std::exchange(owes_wake_, false)) client_.limit_queue->wake();
  ++tries_on_target_;
  Result<HttpRequest> http = build_http_request();
  const std::uint64_t seq = ++attempt_seq_;
  reply_started_ = false;
  reported_usage_ = {};
  ++attempts_started_;
  emit({.kind = Event::Kind::kAttemptStarted, .target = target().config.name});
  if (!http.ok()) {
    // Nothing was sent: the attempt fails with the wire API's error, through
    // the same trail, accounting and policy as one that was answered.
    stream_.reset();
    on_complete(std::move(http).error());
    return;
  }
  attempt_open_ = true;
  const auto request_id = client_.transport->send(std::move(*http), attempt_handlers(seq));
  if (attempt_open_ && seq == attempt_seq_) in_flight_ = request_id;  // unless it completed inline
}

void Call::await_credential() {
  // The source may run a command for seconds: it runs on the cache's thread,
  // and the call resumes on the loop when it is done. The callback owns the
  // call meanwhile (a blocking guarded_chat has let go of it), and hands it
  // to the loop: the last reference is never dropped on the cache's thread.
  target().credentials->refresh(
      [self = shared_from_this(), target = target_index_](std::optional<Error> error) mutable {
        Transport& transport = *self->client_.transport;
        transport.post([self = std::move(self), target, error = std::move(error)]() mutable {
          self->on_credential(target, std::move(error));
        });
      });
}

void Call::on_credential(std::size_t target, std::optional<Error> error) {
  if (finished_ || target != target_index_) return;
  if (!error) {
    begin_attempt();
    return;
  }
  // A source that fails is this target's failed attempt: no request was sent.
  ++tries_on_target_;
  if (error->hint.empty()) error->hint = "the target's credential source (api_key_command or credential_source) failed";
  redact(*error);
  error->target = target_index_ < client_.targets.size() ? client_.targets[target_index_].config.name : "";
  trail_.push_back({.target = error->target, .category = error->category, .waited = pending_wait_});
  emit({.kind = Event::Kind::kAttemptFailed,
        .target = error->target,
        .category = error->category,
        .message = error->message});
  record_outcome(error->category);
  on_failure(std::move(*error));
}

bool Call::retry_with_fresh_credential(const Error& error) {
  const auto& credentials = target().credentials;
  if (!credentials || credential_refreshed_for_ == target_index_) return false;
  if (error.category != ErrorCategory::kAuth && error.category != ErrorCategory::kPermission) return false;
  credential_refreshed_for_ = target_index_;
  credentials->invalidate(attempt_credential_);
  note_step(NextStep::kRetry, StepReason::kCredentialRefreshed);
  last_error_ = error;
  wait_then_attempt(milliseconds(0), StepReason::kCredentialRefreshed);  // current() is empty now: fetches first
  return true;
}

bool Call::admit_attempt() {
  const internal::ResolvedTarget& t = target();
  if (tries_on_target_ > 0 && !health().allow(client_.clock->now())) {
    // This target's breaker opened while we waited (maybe by our own failures).
    Error cause = last_error_ ? *last_error_ : make_error(ErrorCategory::kCircuitOpen, "circuit open");
    record_skip(target_index_, ErrorCategory::kCircuitOpen, {});
    enter_target(target_index_ + 1, &cause);
    return false;
  }
  if (body_target_ != target_index_) {
    auto body = internal::build_request_body(
        t.config.provider, current_request(), t.config.model, streaming_,
        budgeted_ ? std::optional(client_.options.budget_default_max_tokens) : std::nullopt);
    if (!body.ok()) {
      finish(std::move(body).error());
      return false;
    }
    body_ = std::move(*body);
    body_target_ = target_index_;
  }
  // The budget first: a call its budget refuses everywhere must end now, not
  // wait in line for a target's limits (and hold up other callers' turns).
  if (auto refused = reserve_budget()) {
    refused->target = t.config.name;
    if (refused->hint.empty()) refused->hint = internal::hint_for(*refused);
    record_skip(target_index_, ErrorCategory::kBudgetExceeded, refused->message);
    health().on_abandoned();
    enter_target(target_index_ + 1, &*refused);
    return false;
  }
  const auto now = client_.clock->now();
  const auto wait =
      limiter().admit(internal::estimate_tokens(body_.size()) + current_request().max_tokens.value_or(0), now);
  if (!wait) return true;
  settle_budget(Spent::kNothing, nullptr);
  if (*wait == internal::TargetLimiter::kUntilReleased) {
    limits_free_on_release_ = true;
  } else {
    limits_free_at_ = limits_free_at_ ? std::min(*limits_free_at_, now + *wait) : now + *wait;
  }
  record_skip(target_index_, ErrorCategory::kRateLimit, "at its client-side limits");
  health().on_abandoned();
  Error cause = last_error_ ? *last_error_
                            : make_error(ErrorCategory::kRateLimit,
                                         "every target is at its client-side limits (Target::limits) past the "
                                         "call's deadline");
  enter_target(target_index_ + 1, &cause);
  return false;
}

void Call::ask_fleet() {
  internal::Fleet::AdmitRequest request{
      .target = target_index_,
      .tokens = internal::estimate_tokens(body_.size()) + current_request().max_tokens.value_or(0)};
  if (const auto& held = budget_.reservation()) {
    for (const auto& e : held->entries) request.holds.push_back({e.budget, e.period, e.usd, e.tokens});
  }
  fleet_holds_ = request.holds.size();
  request.first_on_target = tries_on_target_ == 0;
  request.retry = std::exchange(retrying_, false);
  if (deadline_) {
    // The fleet's commands are timed by the real clock, whatever clock the client was given.
    request.deadline = std::chrono::steady_clock::now() + (*deadline_ - client_.clock->now());
  }
  const std::uint64_t seq = ++admission_seq_;
  admitting_ = true;
  client_.fleet->admit(std::move(request), [self = shared_from_this(), seq](internal::Fleet::Admission a) {
    self->on_admission(seq, std::move(a));
  });
}

void Call::undo_local_admission() {
  // Quietly: waking the line now would send the calls behind straight to
  // the fleet that just said no (a loop of round trips to Redis). If this
  // call waits, the fleet's wake-up serves them; if it goes on, so does it.
  if (holding_limit_slot_) owes_wake_ = true;
  release_limit_slot(/*wake=*/false);
  settle_budget(Spent::kNothing, nullptr);
  health().on_abandoned();
}

void Call::on_admission(std::uint64_t seq, internal::Fleet::Admission admission) {
  using Verdict = internal::Fleet::Admission::Verdict;
  if (finished_ || seq != admission_seq_ || !admitting_) {
    // Too late (cancelled, past the deadline): whatever was granted goes back unspent.
    client_.fleet->finish(admission.lease, std::vector<internal::Fleet::Spent>(fleet_holds_));
    return;
  }
  admitting_ = false;
  if (admission.verdict == Verdict::kGo) {
    fleet_lease_ = admission.lease;
    send_attempt();
    return;
  }
  undo_local_admission();
  const std::string& name = target().config.name;
  if (admission.retry_refused) {
    // The retry the policy chose is one too many for the fleet: fall back, as
    // when this process's own retry budget is spent.
    const Error cause = last_error_ ? *last_error_ : make_error(ErrorCategory::kTransient, *admission.retry_refused);
    note_step(NextStep::kNextTarget, StepReason::kRetryBudget);
    emit({.kind = Event::Kind::kRetryBudgetExhausted,
          .target = name,
          .category = cause.category,
          .message = *admission.retry_refused,
          .reason = StepReason::kRetryBudget});
    move_to_next_target(cause, StepReason::kRetryBudget);
    return;
  }
  if (admission.verdict == Verdict::kWait) {
    const auto now = client_.clock->now();
    const SteadyTime free_at = now + admission.wait;
    limits_free_at_ = limits_free_at_ ? std::min(*limits_free_at_, free_at) : free_at;
    if (admission.slots_taken) limits_free_on_release_ = true;  // a slot freed anywhere wakes the line
    record_skip(target_index_, ErrorCategory::kRateLimit, "at the fleet's client-side limits (shared_state)");
    Error cause = last_error_ ? *last_error_
                              : make_error(ErrorCategory::kRateLimit,
                                           "every target is at its client-side limits (Target::limits, shared across "
                                           "the fleet) past the call's deadline");
    enter_target(target_index_ + 1, &cause);
    return;
  }
  Error refusal = std::move(*admission.refusal);
  refusal.target = name;
  if (refusal.hint.empty()) refusal.hint = internal::hint_for(refusal);
  if (refusal.category == ErrorCategory::kConnection) {
    finish(std::move(refusal));  // on_unavailable: fail
    return;
  }
  record_skip(target_index_, refusal.category, refusal.message);
  if (refusal.category == ErrorCategory::kCircuitOpen && last_error_) {
    const Error cause = *last_error_;
    enter_target(target_index_ + 1, &cause);
    return;
  }
  enter_target(target_index_ + 1, &refusal);
}

Result<HttpRequest> Call::build_http_request() {
  const internal::ResolvedTarget& t = target();
  const ClientOptions& o = client_.options;
  HttpRequest http;
  http.url = streaming_ ? t.stream_url : t.url;
  if (t.credentials) {
    http.headers.reserve(attempt_credential_.size() + t.headers.size());
    http.headers = attempt_credential_;
    http.headers.insert(http.headers.end(), t.headers.begin(), t.headers.end());
  } else {
    http.headers = t.headers;
  }
  http.body = body_;
  http.connect_timeout = o.timeouts.connect;
  http.total_timeout = o.timeouts.total;
  http.idle_timeout = o.timeouts.idle;
  http.max_response_bytes = o.max_response_bytes;
  http.verify_tls = o.verify_tls;
  http.ca_file = o.ca_file;
  attempt_start_ = client_.clock->now();
  attempt_bounded_by_deadline_ = false;
  if (deadline_) {
    // The attempt may not outlive the call.
    auto remaining = std::chrono::ceil<milliseconds>(*deadline_ - attempt_start_);
    if (remaining < http.total_timeout) {
      http.total_timeout = std::max(remaining, milliseconds(1));
      attempt_bounded_by_deadline_ = true;
    }
  }
  const internal::WireApi& api = internal::wire_api(t.config.provider);
  if (auto prepared = api.prepare_attempt(t.api_state.get(), http, client_.clock->wall_now()); !prepared.ok()) {
    return std::move(prepared).error();
  }
  return http;
}

HttpHandlers Call::attempt_handlers(std::uint64_t seq) {
  HttpHandlers handlers;
  // The transport keeps the handlers (and so the call, through on_complete)
  // alive for the attempt; `this` is safe inside them.
  handlers.on_headers = [this](int status, const Headers& headers) {
    reply_started_ = true;
    if (stream_) stream_->on_headers(status, headers);
  };
  if (streaming_) {
    stream_.emplace(target().config.provider);
    handlers.on_body_chunk = [this, seq](std::string_view chunk) {
      return !finished_ && seq == attempt_seq_ && on_stream_bytes(chunk);
    };
    ttft_timer_ = client_.transport->schedule(first_token_timeout(), [self = shared_from_this(), seq] {
      if (seq == self->attempt_seq_) self->on_first_token_timeout();
    });
  }
  handlers.on_complete = [self = shared_from_this(), seq](Result<HttpResponse> result) {
    if (self->finished_ || seq != self->attempt_seq_) return;
    self->attempt_open_ = false;
    self->in_flight_.reset();
    self->on_complete(std::move(result));
  };
  return handlers;
}

bool Call::on_stream_bytes(std::string_view chunk) {
  const bool was_delivered = stream_->delivered();
  const bool ok = stream_->on_bytes(chunk, options_.on_delta);
  if (!was_delivered && stream_->delivered() && ttft_timer_) {
    client_.transport->cancel_timer(*ttft_timer_);
    ttft_timer_.reset();
  }
  return ok;
}

void Call::on_first_token_timeout() {
  ttft_timer_.reset();
  if (finished_ || !attempt_open_ || !in_flight_ || stream_->delivered()) return;
  stream_->fail(make_error(ErrorCategory::kTimeout,
                           fmt::format("no content within {} ms of the request (time-to-first-token timeout)",
                                       first_token_timeout().count())));
  client_.transport->cancel(*in_flight_);  // completes the attempt with kCancelled; the timeout wins
}

Result<ChatResponse> Call::stream_outcome(Result<HttpResponse> result) {
  return stream_->outcome(std::move(result), client_.clock->wall_now(), &reported_usage_, user_rules());
}

void Call::on_complete(Result<HttpResponse> result) {
  release_limit_slot();
  const internal::ResolvedTarget& t = target();
  const milliseconds duration = since(attempt_start_);
  if (ttft_timer_) {
    client_.transport->cancel_timer(*ttft_timer_);
    ttft_timer_.reset();
  }
  // The transport's clock and the deadline timer race by a millisecond;
  // either way it is the call's deadline that ran out.
  const bool past_deadline =
      !result.ok() && result.error().category == ErrorCategory::kTimeout && attempt_bounded_by_deadline_;
  const int reply_status = result.ok() ? result->status : stream_status();
  // A streamed attempt that was never sent has no stream state: its error is the outcome.
  auto outcome = streaming_ && stream_ ? stream_outcome(std::move(result)) : whole_outcome(std::move(result));
  if (outcome.ok()) {
    succeed(std::move(*outcome), reply_status, duration);
    return;
  }
  Error error = std::move(outcome).error();
  const int status = error.http_status != 0 ? error.http_status : reply_status;
  if (past_deadline) {
    trail_.push_back({.target = t.config.name,
                      .category = ErrorCategory::kTimeout,
                      .http_status = status,
                      .waited = pending_wait_,
                      .duration = duration});
    record_outcome(ErrorCategory::kTimeout);
    account_failure(ErrorCategory::kTimeout, duration);
    finish_past_deadline();
    return;
  }
  if (error.hint.empty() && streaming_ && stream_ && stream_->delivered()) {
    // The route worked until the reply was cut: base_url, DNS and TLS are not the suspects.
    error.hint =
        "the stream broke after part of the reply had arrived (partial_content holds it): a provider or proxy cut, "
        "stalled or garbled it; restart_stream_on_failure gets a complete answer from the next target instead";
  }
  if (error.hint.empty()) error.hint = internal::hint_for(error);
  redact(error);
  error.target = t.config.name;
  error.http_status = status;
  trail_.push_back({.target = t.config.name,
                    .category = error.category,
                    .http_status = status,
                    .waited = pending_wait_,
                    .duration = duration});
  emit({.kind = Event::Kind::kAttemptFailed,
        .target = t.config.name,
        .category = error.category,
        .http_status = status,
        .message = error.message});
  account_failure(error.category, duration);
  if (retry_with_fresh_credential(error)) return;
  record_outcome(error.category);
  on_failure(std::move(error));
}

Result<ChatResponse> Call::whole_outcome(Result<HttpResponse> result) {
  if (!result.ok()) return std::move(result).error();
  HttpResponse& http = *result;
  if (http.status >= 200 && http.status < 300) {
    return internal::parse_response_body(target().config.provider, http.status, http.headers, std::move(http.body),
                                         &reported_usage_);
  }
  return internal::classify_response(http.status, http.headers, http.body, client_.clock->wall_now(), nullptr,
                                     user_rules());
}

void Call::succeed(ChatResponse response, int status, milliseconds duration) {
  const internal::ResolvedTarget& t = target();
  // Never trusted as sent: absent or nonsensical counts become estimates
  // (marked), the rest are clamped and made consistent.
  response.usage = internal::checked_usage(reported_usage_, internal::estimate_tokens(body_.size()),
                                           internal::estimate_tokens(internal::reply_bytes(response)));
  limiter().on_answered(client_.clock->now());
  trail_.push_back({.target = t.config.name, .http_status = status, .waited = pending_wait_, .duration = duration});
  record_outcome(std::nullopt);
  response.target = t.config.name;
  if (const auto& price = client_.prices[target_index_]) response.cost_usd = internal::cost_of(response.usage, *price);
  account(std::nullopt, Spent::kReported, response.usage, duration);
  log_trail(true);
  response.attempts = std::move(trail_);
  finish(std::move(response));
}

void Call::on_failure(Error error) {
  const SteadyTime now = client_.clock->now();
  if (error.category == ErrorCategory::kRateLimit && error.http_status != 0) limiter().on_throttled(now);
  const bool delivered = streaming_ && stream_ && stream_->delivered();
  if (delivered && !options_.restart_stream_on_failure && !client_.options.restart_streams_on_failure) {
    // The caller has seen part of this reply. Starting over would show it
    // twice unless the caller asked for (and is told about) a restart.
    note_step(NextStep::kFail, StepReason::kStreamDelivered);
    error.partial_content = stream_->content();
    finish(std::move(error));
    return;
  }
  if (delivered && options_.on_delta) options_.on_delta(StreamDelta{.kind = StreamDelta::Kind::kRestart});
  if (error.category == ErrorCategory::kContextOverflow && try_shrink(error)) return;
  const RetryPolicy& policy = client_.options.retry;
  const internal::Decision decision = internal::decide({
      .error = error,
      .tries_on_target = tries_on_target_,
      .policy = policy,
      .previous_backoff = previous_backoff_,
      .unit = client_.random->next_unit(),
      .time_left = deadline_ ? std::optional(std::chrono::ceil<milliseconds>(*deadline_ - now)) : std::nullopt,
      .retry_budget_left = health().retry_budget_left(now),
      .silent = !reply_started_,
      .broken_stream = delivered,
      .later_targets = target_index_ + 1 < client_.targets.size(),
  });
  switch (decision.step) {
    case internal::Step::kFail:
      note_step(NextStep::kFail, decision.reason);
      finish(std::move(error));
      return;
    case internal::Step::kNextTarget:
      note_step(NextStep::kNextTarget, decision.reason);
      if (decision.reason == StepReason::kRetryBudget) {
        emit({.kind = Event::Kind::kRetryBudgetExhausted,
              .target = target().config.name,
              .category = error.category,
              .reason = decision.reason});
      }
      if (decision.reason == StepReason::kSilentRoute) report_transition(health().on_silent_route(now), error.category);
      move_to_next_target(error, decision.reason);
      return;
    case internal::Step::kRetrySameTarget:
      note_step(NextStep::kRetry, decision.reason);
      health().try_spend_retry(now);
      retrying_ = true;
      previous_backoff_ = decision.delay;
      last_error_ = std::move(error);
      wait_then_attempt(decision.delay, decision.reason);
      return;
  }
}

void Call::note_step(NextStep next, StepReason reason) {
  if (trail_.empty() || trail_.back().skipped) return;
  trail_.back().next = next;
  trail_.back().reason = reason;
  log_trail(false);
}

bool Call::try_shrink(const Error& error) {
  if (!options_.shrink_messages || shrinks_ >= options_.max_shrinks) return false;
  std::optional<std::vector<Message>> shorter = options_.shrink_messages(current_request().messages, error);
  if (!shorter || shorter->empty()) return false;
  ++shrinks_;
  note_step(NextStep::kRetry, StepReason::kShrunk);
  if (!shrunk_request_) shrunk_request_ = request_;
  shrunk_request_->messages = std::move(*shorter);
  body_target_ = SIZE_MAX;  // rebuild the body from the shorter messages
  last_error_ = error;
  wait_then_attempt(milliseconds(0), StepReason::kShrunk);
  return true;
}

void Call::move_to_next_target(const Error& error, StepReason reason) {
  emit({.kind = Event::Kind::kFallback,
        .target = target().config.name,
        .category = error.category,
        .http_status = error.http_status,
        .reason = reason});
  enter_target(target_index_ + 1, &error);
}

void Call::enter_target(std::size_t from, const Error* cause) {
  const auto failed_window =
      cause && target_index_ < client_.targets.size() ? target().config.context_window : std::nullopt;
  const auto now = client_.clock->now();
  for (std::size_t i = from; i < client_.targets.size(); ++i) {
    const internal::ResolvedTarget& candidate = client_.targets[i];
    std::optional<ErrorCategory> skip;
    if (cause && cause->category == ErrorCategory::kContextOverflow &&
        internal::skip_for_context(failed_window, candidate.config.context_window)) {
      skip = ErrorCategory::kContextOverflow;
    } else if (!client_.health[i]->allow(now)) {
      skip = ErrorCategory::kCircuitOpen;
    }
    if (skip) {
      record_skip(i, *skip, {});
      continue;
    }
    target_index_ = i;
    tries_on_target_ = 0;
    retrying_ = false;
    previous_backoff_ = milliseconds(0);
    pending_wait_ = milliseconds(0);
    last_error_.reset();
    client_.health[i]->note_request(now);
    begin_attempt();
    return;
  }
  if (limits_free_at_ || limits_free_on_release_) {
    // Some target was only at its client-side limits: wait for the first to
    // free up and go through the chain again, unless that outlasts the call.
    // A slot freed by another call wakes the line; a bucket refills on time.
    std::optional<SteadyTime> free_at = limits_free_at_;
    const bool on_release = limits_free_on_release_;
    limits_free_at_.reset();
    limits_free_on_release_ = false;
    if (free_at && deadline_ && *free_at >= *deadline_) free_at.reset();
    if (on_release || free_at) {
      wait_for_limits(free_at, cause);
      return;
    }
  }
  if (cause) {
    finish(*cause);
    return;
  }
  Error e = make_error(ErrorCategory::kCircuitOpen, "every target is paused by its circuit breaker; nothing was sent");
  e.hint = internal::hint_for(e);
  finish(std::move(e));
}

void Call::wait_then_attempt(milliseconds delay, StepReason reason) {
  pending_wait_ = delay;
  emit({.kind = Event::Kind::kRetryScheduled,
        .target = target().config.name,
        .category = last_error_ ? std::optional(last_error_->category) : std::nullopt,
        .http_status = last_error_ ? last_error_->http_status : 0,
        .delay = delay,
        .reason = reason});
  wait_timer_ = client_.transport->schedule(delay, [self = shared_from_this()] {
    self->wait_timer_.reset();
    self->begin_attempt();
  });
}

void Call::on_deadline() {
  deadline_timer_.reset();
  if (finished_) return;
  finish_past_deadline();  // an attempt still open is closed, as a timeout, by finish()
}

void Call::finish_past_deadline() {
  Error e = make_error(ErrorCategory::kTimeout, fmt::format("call deadline of {} ms passed", deadline_limit_->count()));
  e.target = target().config.name;
  if (streaming_ && stream_ && stream_->delivered()) e.partial_content = stream_->content();
  finish(std::move(e));
}

void Call::finish(Result<ChatResponse> result) {
  if (finished_) return;
  finished_ = true;
  leave_line(/*went=*/true);
  if (std::exchange(owes_wake_, false)) client_.limit_queue->wake();
  const std::shared_ptr<Call> parked = std::move(parked_self_);  // a parked call ends (cancelled, past its deadline)
  Transport& transport = *client_.transport;
  if (wait_timer_) transport.cancel_timer(*wait_timer_);
  if (deadline_timer_) transport.cancel_timer(*deadline_timer_);
  if (ttft_timer_) transport.cancel_timer(*ttft_timer_);
  if (attempt_open_) {
    // Cancelled or past the deadline in flight: the upstream may bill it, so
    // it is in the trail, the ledger and the budget like any attempt.
    const ErrorCategory why = result.ok() ? ErrorCategory::kCancelled : result.error().category;
    const milliseconds duration = since(attempt_start_);
    trail_.push_back({.target = target().config.name,
                      .category = why,
                      .http_status = stream_status(),
                      .waited = pending_wait_,
                      .duration = duration});
    account_failure(why, duration);
    health().on_abandoned();  // a half-open probe slot is freed
  }
  release_limit_slot();
  settle_budget(Spent::kNothing, nullptr);  // a reservation is open only for an attempt, settled above
  if (in_flight_) {
    attempt_open_ = false;
    transport.cancel(*in_flight_);  // its on_complete sees finished_ and returns
  }
  if (options_.cancellation) options_.cancellation->state()->unsubscribe(cancel_registration_);
  if (!result.ok()) {
    Error& e = result.error();
    redact(e);
    log_trail(true);
    if (e.attempts.empty()) e.attempts = std::move(trail_);
  }
  log_call(result);
  auto done = std::move(done_);
  done(std::move(result));
  // Last: the client's destructor waits for this.
  std::lock_guard lock(client_.calls_mu);
  client_.live_calls.erase(id_);
  client_.calls_done.notify_all();
}

}  // namespace llmguard
