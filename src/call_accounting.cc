// What a call holds, spends and tells: client-side limit slots, budget
// reservations and their settling, the ledger's records, breaker transitions
// events and log lines. The call's flow is in call.cc; these are the books it keeps on
// the way.
#include <fmt/format.h>

#include "call.h"
#include "codec.h"
#include "engine_log.h"

namespace llmguard {

using std::chrono::milliseconds;

void Call::release_limit_slot(bool wake) {
  if (!holding_limit_slot_) return;
  holding_limit_slot_ = false;
  limiter().release();
  if (wake) client_.limit_queue->wake();  // a slot is free
}

void Call::wait_for_limits(std::optional<SteadyTime> free_at, const Error* cause) {
  waiting_cause_ = cause ? std::optional<Error>(*cause) : std::nullopt;
  waiting_for_limits_ = true;
  owes_wake_ = false;  // the calls behind are woken with this one
  parked_self_ = shared_from_this();
  client_.limit_queue->park(request_.caller_tag, weak_from_this(), id_);
  if (free_at) client_.limit_queue->arm(*free_at);
  if (resuming_) {
    from_line_ = false;  // the line sees it parked again when resume() returns
  } else {
    leave_line(/*went=*/false);
  }
}

bool Call::still_waiting() const { return !finished_ && waiting_for_limits_; }

bool Call::deciding() const { return from_line_ && !finished_ && !waiting_for_limits_; }

void Call::leave_line(bool went) {
  if (!std::exchange(from_line_, false)) return;
  client_.limit_queue->decided(request_.caller_tag, went);
}

void Call::resume() {
  const std::shared_ptr<Call> self = std::move(parked_self_);  // until this returns; whatever goes on owns it then
  waiting_for_limits_ = false;
  std::optional<Error> cause = std::move(waiting_cause_);
  waiting_cause_.reset();
  resuming_ = true;
  from_line_ = true;  // the line waits for its word if it goes on to ask the fleet
  enter_target(0, cause ? &*cause : nullptr);
  resuming_ = false;
}

void Call::record_outcome(const std::optional<ErrorCategory>& failure) {
  const auto now = client_.clock->now();
  report_transition(failure ? health().on_failure(*failure, now) : health().on_success(now), failure);
}

void Call::report_transition(const std::optional<internal::TargetHealth::Transition>& transition,
                             const std::optional<ErrorCategory>& failure) {
  if (!transition) return;
  if (transition->to == llmguard::TargetHealth::State::kOpen) {
    if (client_.fleet && failure) client_.fleet->breaker_opened(target_index_, *failure, transition->open_for);
    emit({.kind = Event::Kind::kBreakerOpened,
          .target = target().config.name,
          .category = failure,
          .delay = transition->open_for});
  } else if (transition->to == llmguard::TargetHealth::State::kClosed) {
    emit({.kind = Event::Kind::kBreakerClosed, .target = target().config.name});
  }
}

std::optional<Error> Call::reserve_budget() {
  if (!budgeted_) return std::nullopt;
  const internal::ResolvedTarget& t = target();
  return budget_.reserve({.target = t.config.name,
                          .model = t.config.model,
                          .price = client_.prices[target_index_],
                          .prompt_bytes = static_cast<std::int64_t>(body_.size()),
                          .requested_output = request_.max_tokens.value_or(client_.options.budget_default_max_tokens),
                          .output_scale = client_.reserve_scale[target_index_],
                          .default_output = !request_.max_tokens},
                         client_.clock->wall_now());
}

void Call::settle_budget(Spent spent, const Usage* usage) {
  internal::AttemptBudget::Settled settled;
  const auto overrun = budget_.settle(spent, usage, client_.prices[target_index_], client_.reserve_scale[target_index_],
                                      client_.clock->wall_now(), &settled);
  if (fleet_lease_ != 0) {
    // One settlement gives the fleet the attempt's slot back and its holds, replaced by the same amounts.
    client_.fleet->finish(fleet_lease_,
                          std::vector<internal::Fleet::Spent>(fleet_holds_, {settled.usd, settled.tokens}));
    fleet_lease_ = 0;
  }
  if (!overrun) return;
  emit({.kind = Event::Kind::kBudgetOverrun,
        .target = target().config.name,
        .message = fmt::format("billed ${:.6f} and {} tokens against a reservation of ${:.6f} and {} tokens "
                               "({} completion tokens for max_tokens {}); this target's next reservations are {:.1f}x",
                               overrun->billed_usd, overrun->billed_tokens, overrun->reserved_usd,
                               overrun->reserved_tokens, overrun->completion_tokens,
                               current_request().max_tokens.value_or(client_.options.budget_default_max_tokens),
                               overrun->output_scale)});
}

Usage Call::attempt_estimate() const {
  Usage u;
  u.prompt_tokens = internal::estimate_tokens(body_.size());
  if (streaming_ && stream_) u.completion_tokens = internal::estimate_tokens(stream_->content().size());
  u.total_tokens = u.prompt_tokens + u.completion_tokens;
  u.estimated = true;
  return u;
}

void Call::account(const std::optional<ErrorCategory>& failure, Spent spent, const Usage& usage, milliseconds latency) {
  const internal::ResolvedTarget& t = target();
  internal::Ledger::AttemptRecord record{.failure = failure, .usage = usage, .latency = latency};
  if (const auto& price = client_.prices[target_index_]; price && (!failure || usage.estimated)) {
    record.cost_usd = internal::cost_of(usage, *price);
  }
  client_.ledger.record({t.config.name, t.config.model, request_.caller_tag}, record);
  settle_budget(spent, &usage);
}

void Call::account_failure(ErrorCategory category, milliseconds latency) {
  // An error reply is not billed. An attempt that ended without one (timed
  // out, cancelled, cut after text arrived) may well be: the provider was
  // working on it. Its usage is estimated, and the budget keeps the whole
  // reservation as spent, the bound.
  const bool maybe_billed = category == ErrorCategory::kTimeout || category == ErrorCategory::kCancelled ||
                            (streaming_ && stream_ && stream_->delivered());
  if (maybe_billed) {
    account(category, Spent::kUnknown, attempt_estimate(), latency);
  } else {
    account(category, Spent::kNothing, Usage{}, latency);
  }
}

void Call::emit(Event event) const {
  event.caller_tag = request_.caller_tag;
  event.attempt = attempts_started_;
  if (client_.log_level >= LogLevel::kDebug) log(internal::event_line(id_, event));
  if (client_.options.on_event) client_.options.on_event(event);
}

void Call::log_trail(bool all) {
  if (client_.log_level < LogLevel::kInfo) return;
  for (; logged_attempts_ < trail_.size(); ++logged_attempts_) {
    const Attempt& a = trail_[logged_attempts_];
    // A failed attempt is logged once the call has decided what comes next.
    if (!all && a.category && !a.skipped && !a.next) return;
    std::string_view model;
    for (const auto& t : client_.targets) {
      if (t.config.name == a.target) model = t.config.model;
    }
    log(internal::attempt_line(id_, logged_attempts_ + 1, a, model, request_.caller_tag));
  }
}

void Call::log_call(const Result<ChatResponse>& result) {
  if (client_.log_level < LogLevel::kInfo) return;
  log(internal::call_line(id_, result, since(call_start_), request_.caller_tag));
}

void Call::log(const std::string& line) const {
  // Messages are masked already; the rest is configuration, masked all the same.
  client_.log_sink(client_.redactor.redact(line));
}

}  // namespace llmguard
