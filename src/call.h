// One guarded_chat call: a state machine that runs on the transport's loop
// thread. It asks policy.h what to do after each failure and carries it out
// with transport requests and timers; it never blocks.
#ifndef LLMGUARD_SRC_CALL_H_
#define LLMGUARD_SRC_CALL_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attempt_budget.h"
#include "client_impl.h"
#include "limit_queue.h"
#include "llmguard/options.h"
#include "stream_attempt.h"
#include "usage_check.h"

namespace llmguard {

class Call : public std::enable_shared_from_this<Call>, public internal::LimitQueue::Waiter {
 public:
  using Done = std::function<void(Result<ChatResponse>)>;
  // `request` must outlive the call; `owned` may hold it (async calls).
  Call(std::shared_ptr<Client::Impl> client, std::uint64_t id, const ChatRequest* request,
       std::optional<ChatRequest> owned, CallOptions options, Done done);

  // Posts the first attempt to the loop. Call once.
  void start();
  // Stops the call with kCancelled (no-op if already finished). Any thread.
  void cancel();

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;

  void begin_attempt();
  // Admitted (by this process, and the fleet if it has a say): sends it.
  void send_attempt();
  // The fleet's admission (ClientOptions::shared_state), asked after this
  // process's own; the answer comes back on the loop.
  void ask_fleet();
  void on_admission(std::uint64_t seq, internal::Fleet::Admission admission);
  // The fleet said no: what this process took for the attempt goes back.
  void undo_local_admission();
  // Breaker, request body, budget and limits: false when the call moved on
  // (to another target, a wait or its end) instead.
  bool admit_attempt();
  // The current attempt's request, completed by its wire API (a signature
  // over this body at this time); an error when it cannot be.
  Result<HttpRequest> build_http_request();
  HttpHandlers attempt_handlers(std::uint64_t seq);
  void cancel_on_loop();
  void on_complete(Result<HttpResponse> result);
  // A target with a credential source: fetches a token off the loop, then
  // begins the attempt (or fails it with the source's error).
  void await_credential();
  void on_credential(std::size_t target, std::optional<Error> error);
  // After a 401/403 from a target with a credential source, once per target:
  // drops the refused token and tries the target again with a fresh one.
  bool retry_with_fresh_credential(const Error& error);
  Result<ChatResponse> stream_outcome(Result<HttpResponse> result);
  Result<ChatResponse> whole_outcome(Result<HttpResponse> result);
  bool on_stream_bytes(std::string_view chunk);
  void on_first_token_timeout();
  std::chrono::milliseconds first_token_timeout() const;  // per the target's model
  void succeed(ChatResponse response, int status, std::chrono::milliseconds duration);
  void on_failure(Error error);
  void move_to_next_target(const Error& error, StepReason reason);
  void note_step(NextStep next, StepReason reason);  // on the trail's last attempt
  void report_transition(const std::optional<internal::TargetHealth::Transition>& transition,
                         const std::optional<ErrorCategory>& failure);
  void enter_target(std::size_t from, const Error* cause);
  void record_outcome(const std::optional<ErrorCategory>& failure);
  void redact(Error& error) const;
  void record_skip(std::size_t target, ErrorCategory why, std::string_view message);
  std::optional<Error> reserve_budget();
  using Spent = internal::Spent;
  void settle_budget(Spent spent, const Usage* usage);
  Usage attempt_estimate() const;
  void account(const std::optional<ErrorCategory>& failure, Spent spent, const Usage& usage,
               std::chrono::milliseconds latency);
  void account_failure(ErrorCategory category, std::chrono::milliseconds latency);
  void emit(Event event) const;
  // Log lines (ClientOptions::log_level): the trail's attempts whose outcome
  // and next step are known (`all`: every one left), then the call's line.
  void log_trail(bool all);
  void log_call(const Result<ChatResponse>& result);
  void log(const std::string& line) const;
  internal::TargetHealth& health() const { return *client_.health[target_index_]; }
  internal::TargetLimiter& limiter() const { return client_.limiters[target_index_]; }
  void release_limit_slot(bool wake = true);
  void wait_then_attempt(std::chrono::milliseconds delay, StepReason reason);
  void on_deadline();
  void finish_past_deadline();
  void finish(Result<ChatResponse> result);
  std::chrono::milliseconds since(SteadyTime t) const;
  static std::optional<std::chrono::milliseconds> resolve_deadline(std::optional<std::chrono::milliseconds> per_call,
                                                                   std::optional<std::chrono::milliseconds> per_client);
  const internal::ResolvedTarget& target() const { return client_.targets[target_index_]; }
  const internal::UserRules* user_rules() const {
    return client_.classifier_rules.empty() ? nullptr : &client_.classifier_rules;
  }
  bool try_shrink(const Error& error);
  // Client-side limits: park this call until a target can take it.
  void wait_for_limits(std::optional<SteadyTime> free_at, const Error* cause);
  bool still_waiting() const override;
  void resume() override;
  bool deciding() const override;
  // Tells the line how a resumed call's asynchronous turn went, once.
  void leave_line(bool went);
  const ChatRequest& current_request() const { return shrunk_request_ ? *shrunk_request_ : request_; }

  // Co-owned: the client may be destroyed while this call finishes.
  const std::shared_ptr<Client::Impl> client_state_;
  Client::Impl& client_;
  const std::uint64_t id_;
  std::optional<ChatRequest> owned_request_;
  const ChatRequest& request_;
  const CallOptions options_;
  Done done_;
  std::optional<ChatRequest> shrunk_request_;  // the caller's shorter messages after a context overflow
  int shrinks_ = 0;
  // Client-side limits: whether this call holds an attempt slot, when the
  // earliest target passed over for its limits could take it, and which
  // targets' skips are already in the trail (a waiting call looks again and
  // again; the trail says it once).
  bool holding_limit_slot_ = false;
  std::optional<SteadyTime> limits_free_at_;
  bool limits_free_on_release_ = false;        // a target passed over had every concurrency slot taken
  std::vector<std::uint32_t> skips_recorded_;  // per target, a bit per ErrorCategory already in the trail
  bool waiting_for_limits_ = false;
  // While parked, nothing else may own this call (no timer, no transfer, and
  // a call without a deadline has no deadline timer): it owns itself until
  // it is resumed or finished, so that the line's weak reference holds.
  std::shared_ptr<Call> parked_self_;
  // The fleet's side of the current attempt: an admission asked (answers
  // to an older one are stale), the lease it granted.
  std::uint64_t admission_seq_ = 0;
  bool admitting_ = false;
  std::uint64_t fleet_lease_ = 0;
  std::size_t fleet_holds_ = 0;
  bool retrying_ = false;   // the next attempt is a retry the policy chose: the fleet's retry budget may refuse it
  bool resuming_ = false;   // inside resume(): the line sees a wait from here itself
  bool owes_wake_ = false;  // gave a slot back without waking the line (see undo_local_admission)
  bool from_line_ = false;  // resumed, and not yet sent, parked again or finished: the line waits for its word
  std::optional<Error> waiting_cause_;  // the error to end with if the wait outlasts the call

  // Loop-thread state.
  std::size_t target_index_ = 0;
  int tries_on_target_ = 0;
  std::chrono::milliseconds pending_wait_{0};
  std::chrono::milliseconds previous_backoff_{0};
  SteadyTime attempt_start_{};
  std::optional<SteadyTime> deadline_;
  std::optional<Transport::RequestId> in_flight_;
  std::uint64_t attempt_seq_ = 0;
  bool attempt_open_ = false;
  bool reply_started_ = false;              // the current attempt's status line and headers arrived
  internal::ReportedUsage reported_usage_;  // the current attempt's, as its reply carried it
  bool attempt_bounded_by_deadline_ = false;
  std::size_t body_target_ = SIZE_MAX;  // target whose body is in body_
  std::string body_;
  Headers attempt_credential_;                       // the current attempt's, from the target's credential source
  std::size_t credential_refreshed_for_ = SIZE_MAX;  // target whose refused token was already replaced
  std::optional<Transport::TimerId> wait_timer_;
  std::optional<Transport::TimerId> deadline_timer_;
  std::vector<Attempt> trail_;
  std::size_t logged_attempts_ = 0;  // trail_ entries already logged
  int attempts_started_ = 0;         // requests sent (or about to be), for Event::attempt
  SteadyTime call_start_{};
  std::optional<Error> last_error_;  // kept while waiting to retry
  const bool budgeted_;
  internal::AttemptBudget budget_;
  const std::optional<std::chrono::milliseconds> deadline_limit_;  // CallOptions', else ClientOptions'

  // Streaming state of the current attempt.
  const bool streaming_;
  std::optional<internal::StreamAttempt> stream_;
  int stream_status() const { return stream_ ? stream_->status() : 0; }
  std::optional<Transport::TimerId> ttft_timer_;
  bool finished_ = false;
  std::uint64_t cancel_registration_ = 0;
};

}  // namespace llmguard

#endif  // LLMGUARD_SRC_CALL_H_
