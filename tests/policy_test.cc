#include "policy.h"

#include <doctest/doctest.h>

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;

RetryPolicy policy_with(Jitter jitter) {
  RetryPolicy p;
  p.max_attempts = 4;
  p.base_delay = milliseconds(100);
  p.max_delay = milliseconds(1000);
  p.jitter = jitter;
  p.max_retry_after = milliseconds(5000);
  return p;
}

TEST_CASE("Backoff without jitter doubles from the base and stops at the cap") {
  auto p = policy_with(Jitter::kNone);
  CHECK(backoff_delay(p, 1, {}, 0.3) == milliseconds(100));
  CHECK(backoff_delay(p, 2, {}, 0.3) == milliseconds(200));
  CHECK(backoff_delay(p, 4, {}, 0.3) == milliseconds(800));
  CHECK(backoff_delay(p, 5, {}, 0.3) == milliseconds(1000));
  CHECK(backoff_delay(p, 500, {}, 0.3) == milliseconds(1000));  // no overflow
}

TEST_CASE("Full jitter spans [0, exponential] with the random unit pinned") {
  auto p = policy_with(Jitter::kFull);
  CHECK(backoff_delay(p, 3, {}, 0.0) == milliseconds(0));
  CHECK(backoff_delay(p, 3, {}, 0.5) == milliseconds(200));
  CHECK(backoff_delay(p, 3, {}, 0.999999) == milliseconds(400));
}

TEST_CASE("Equal jitter keeps at least half the exponential delay") {
  auto p = policy_with(Jitter::kEqual);
  CHECK(backoff_delay(p, 3, {}, 0.0) == milliseconds(200));
  CHECK(backoff_delay(p, 3, {}, 0.5) == milliseconds(300));
  CHECK(backoff_delay(p, 3, {}, 0.999999) == milliseconds(400));
}

TEST_CASE("Decorrelated jitter grows from the previous delay within [base, cap]") {
  auto p = policy_with(Jitter::kDecorrelated);
  CHECK(backoff_delay(p, 1, milliseconds(0), 0.0) == milliseconds(100));
  CHECK(backoff_delay(p, 2, milliseconds(300), 0.5) == milliseconds(500));        // U(100, 900)
  CHECK(backoff_delay(p, 3, milliseconds(900), 0.999999) == milliseconds(1000));  // capped
}

TEST_CASE("Jitter stays in bounds over many random draws") {
  for (Jitter j : {Jitter::kFull, Jitter::kEqual, Jitter::kDecorrelated}) {
    auto p = policy_with(j);
    milliseconds previous{0};
    for (int i = 0; i < 1000; ++i) {
      const double unit = (i * 7919 % 1000) / 1000.0;
      auto d = backoff_delay(p, 1 + i % 8, previous, unit);
      CHECK(d >= milliseconds(0));
      CHECK(d <= p.max_delay);
      previous = d;
    }
  }
}

Error error_of(ErrorCategory c, std::optional<milliseconds> retry_after = std::nullopt) {
  Error e;
  e.category = c;
  e.retry_after = retry_after;
  return e;
}

TEST_CASE("Decision table: what each category does on its first failure") {
  auto p = policy_with(Jitter::kNone);
  const milliseconds backoff{100};
  struct Row {
    ErrorCategory category;
    Step step;
  };
  const Row rows[] = {
      {ErrorCategory::kAuth, Step::kNextTarget},
      {ErrorCategory::kPermission, Step::kNextTarget},
      {ErrorCategory::kModelNotFound, Step::kNextTarget},
      {ErrorCategory::kQuotaExhausted, Step::kNextTarget},
      {ErrorCategory::kContextOverflow, Step::kNextTarget},
      {ErrorCategory::kBudgetExceeded, Step::kNextTarget},
      {ErrorCategory::kCircuitOpen, Step::kNextTarget},
      {ErrorCategory::kRateLimit, Step::kRetrySameTarget},
      {ErrorCategory::kTransient, Step::kRetrySameTarget},
      {ErrorCategory::kTimeout, Step::kRetrySameTarget},
      {ErrorCategory::kConnection, Step::kRetrySameTarget},
      {ErrorCategory::kUnknown, Step::kRetrySameTarget},
      {ErrorCategory::kBadRequest, Step::kFail},
      {ErrorCategory::kContentFilter, Step::kFail},
      {ErrorCategory::kCancelled, Step::kFail},
  };
  for (const Row& row : rows) {
    CAPTURE(to_string(row.category));
    Decision d = decide(error_of(row.category), 1, p, backoff);
    CHECK(d.step == row.step);
    if (d.step == Step::kRetrySameTarget) CHECK(d.delay == backoff);
  }
}

TEST_CASE("Category rules replace the default action, the last rule for a category winning") {
  auto p = policy_with(Jitter::kNone);
  p.rules = {
      {.category = ErrorCategory::kContentFilter, .action = OnFailure::kNextTarget},
      {.category = ErrorCategory::kRateLimit, .action = OnFailure::kRetry},
      {.category = ErrorCategory::kRateLimit, .action = OnFailure::kNextTarget},  // wins
      {.category = ErrorCategory::kAuth, .action = OnFailure::kFail},
      {.category = ErrorCategory::kBadRequest, .action = OnFailure::kRetry, .max_attempts = 2},
  };
  const milliseconds backoff{100};
  CHECK(decide(error_of(ErrorCategory::kContentFilter), 1, p, backoff).step == Step::kNextTarget);
  CHECK(decide(error_of(ErrorCategory::kRateLimit, milliseconds(10)), 1, p, backoff).step == Step::kNextTarget);
  CHECK(decide(error_of(ErrorCategory::kAuth), 1, p, backoff).step == Step::kFail);
  Decision retry = decide(error_of(ErrorCategory::kBadRequest), 1, p, backoff);
  CHECK(retry.step == Step::kRetrySameTarget);
  CHECK(retry.delay == backoff);
  CHECK(decide(error_of(ErrorCategory::kBadRequest), 2, p, backoff).step == Step::kNextTarget);  // its own cap
  // Categories without a rule keep their defaults; cancellation is never overridden.
  CHECK(decide(error_of(ErrorCategory::kTransient), 1, p, backoff).step == Step::kRetrySameTarget);
  p.rules.push_back({.category = ErrorCategory::kCancelled, .action = OnFailure::kRetry});
  CHECK(decide(error_of(ErrorCategory::kCancelled), 1, p, backoff).step == Step::kFail);
}

TEST_CASE("The provider's x-should-retry verdict: false never retries here, true lets unknown and bad requests retry") {
  auto p = policy_with(Jitter::kNone);
  const milliseconds backoff{100};
  Error throttled = error_of(ErrorCategory::kRateLimit, milliseconds(50));
  throttled.should_retry = false;
  CHECK(decide(throttled, 1, p, backoff).step == Step::kNextTarget);
  Error overloaded = error_of(ErrorCategory::kTransient);
  overloaded.should_retry = true;  // Anthropic's 529 says so; the default already retries
  CHECK(decide(overloaded, 1, p, backoff).step == Step::kRetrySameTarget);
  Error conflict = error_of(ErrorCategory::kBadRequest);
  conflict.should_retry = true;
  Decision retry = decide(conflict, 1, p, backoff);
  CHECK(retry.step == Step::kRetrySameTarget);
  CHECK(retry.delay == backoff);
  CHECK(decide(conflict, 4, p, backoff).step == Step::kFail);  // attempts used up: the category decides
  Error auth = error_of(ErrorCategory::kAuth);
  auth.should_retry = true;  // a bad key stays bad
  CHECK(decide(auth, 1, p, backoff).step == Step::kNextTarget);
}

TEST_CASE("Retryable categories move on once the target's attempts are used") {
  auto p = policy_with(Jitter::kNone);
  CHECK(decide(error_of(ErrorCategory::kTransient), 3, p, milliseconds(1)).step == Step::kRetrySameTarget);
  CHECK(decide(error_of(ErrorCategory::kTransient), 4, p, milliseconds(1)).step == Step::kNextTarget);
  CHECK(decide(error_of(ErrorCategory::kUnknown), 2, p, milliseconds(1)).step == Step::kNextTarget);
}

TEST_CASE("A provider delay within the cap replaces backoff; above it, fall back at once") {
  auto p = policy_with(Jitter::kNone);
  Decision within = decide(error_of(ErrorCategory::kRateLimit, milliseconds(2500)), 1, p, milliseconds(100));
  CHECK(within.step == Step::kRetrySameTarget);
  CHECK(within.delay == milliseconds(2500));
  Decision above = decide(error_of(ErrorCategory::kRateLimit, milliseconds(60000)), 1, p, milliseconds(100));
  CHECK(above.step == Step::kNextTarget);
  Decision zero = decide(error_of(ErrorCategory::kTransient, milliseconds(0)), 1, p, milliseconds(100));
  CHECK(zero.delay == milliseconds(0));
}

TEST_CASE("Context windows: only strictly larger known windows are tried") {
  CHECK(skip_for_context(8000, 8000));
  CHECK(skip_for_context(8000, 4000));
  CHECK_FALSE(skip_for_context(8000, 128000));
  CHECK_FALSE(skip_for_context(8000, std::nullopt));
  CHECK_FALSE(skip_for_context(std::nullopt, 4000));
}

TEST_CASE("Every decision says why: default, rule, attempts, cap, provider, deadline, retry budget, silent route") {
  RetryPolicy p;
  p.max_attempts = 3;
  p.jitter = Jitter::kNone;
  p.base_delay = milliseconds(100);
  p.max_delay = milliseconds(1000);
  p.max_retry_after = milliseconds(5000);
  auto run = [&](const Error& e, int tries = 1, std::optional<milliseconds> time_left = std::nullopt,
                 bool budget = true, bool silent = false, bool stalled = false) {
    return decide({.error = e,
                   .tries_on_target = tries,
                   .policy = p,
                   .previous_backoff = milliseconds(0),
                   .unit = 0.5,
                   .time_left = time_left,
                   .retry_budget_left = budget,
                   .silent = silent,
                   .broken_stream = stalled});
  };
  auto transient = error_of(ErrorCategory::kTransient);
  Decision d = run(transient);
  CHECK(d.step == Step::kRetrySameTarget);
  CHECK(d.delay == milliseconds(100));  // 2^0 * base, no jitter
  CHECK(d.reason == StepReason::kCategoryDefault);
  CHECK(run(transient, 2).delay == milliseconds(200));  // backoff drawn inside, from the tries
  CHECK(run(transient, 3).reason == StepReason::kAttemptsExhausted);
  CHECK(run(error_of(ErrorCategory::kBadRequest)).step == Step::kFail);
  CHECK(run(error_of(ErrorCategory::kBadRequest)).reason == StepReason::kCategoryDefault);
  d = run(error_of(ErrorCategory::kRateLimit, milliseconds(9000)));
  CHECK(d.step == Step::kNextTarget);
  CHECK(d.reason == StepReason::kDelayAboveCap);
  Error said_no = transient;
  said_no.should_retry = false;
  CHECK(run(said_no).reason == StepReason::kProviderSaidNo);
  Error said_retry = error_of(ErrorCategory::kBadRequest);
  said_retry.should_retry = true;
  CHECK(run(said_retry).step == Step::kRetrySameTarget);
  CHECK(run(said_retry).reason == StepReason::kProviderSaidRetry);
  d = run(transient, 1, milliseconds(100));  // the 100 ms wait would reach the deadline
  CHECK(d.step == Step::kNextTarget);
  CHECK(d.reason == StepReason::kPastDeadline);
  CHECK(run(transient, 1, milliseconds(101)).step == Step::kRetrySameTarget);
  d = run(transient, 1, std::nullopt, /*budget=*/false);
  CHECK(d.step == Step::kNextTarget);
  CHECK(d.reason == StepReason::kRetryBudget);
  auto timeout = error_of(ErrorCategory::kTimeout);
  CHECK(run(timeout).step == Step::kRetrySameTarget);  // a reply had started: a slow provider
  d = run(timeout, 1, std::nullopt, true, /*silent=*/true);
  CHECK(d.step == Step::kNextTarget);
  CHECK(d.reason == StepReason::kSilentRoute);
  CHECK(run(timeout, 1, std::nullopt, true, false, /*broken=*/true).reason == StepReason::kBrokenStream);
  CHECK(run(transient, 1, std::nullopt, true, /*silent=*/true).step == Step::kRetrySameTarget);  // only timeouts
  RetryInputs last{.error = timeout, .policy = p, .silent = true, .broken_stream = true, .later_targets = false};
  CHECK(decide(last).step == Step::kRetrySameTarget);  // the last target: staying is the only way on
  p.rules = {{.category = ErrorCategory::kTimeout, .action = OnFailure::kRetry}};
  d = run(timeout, 1, std::nullopt, true, /*silent=*/true);
  CHECK(d.step == Step::kRetrySameTarget);  // a rule still asks for retries
  CHECK(d.reason == StepReason::kRule);
  p.rules = {{.category = ErrorCategory::kContentFilter, .action = OnFailure::kNextTarget}};
  CHECK(run(error_of(ErrorCategory::kContentFilter)).reason == StepReason::kRule);
}

TEST_CASE("Reasoning models get the long first-token timeout") {
  for (const char* m : {"o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5.1", "deepseek-reasoner",
                        "deepseek-ai/DeepSeek-R1", "qwq-32b", "claude-3-7-sonnet-thinking", "openai/o3"}) {
    CAPTURE(m);
    CHECK(is_reasoning_model(m));
  }
  for (const char* m : {"gpt-4o-mini", "gpt-4.1", "claude-3-5-haiku-latest", "llama-3.1-8b", "o1x", "mistral-large"}) {
    CAPTURE(m);
    CHECK_FALSE(is_reasoning_model(m));
  }
}

TEST_CASE("Step and reason names are stable") {
  CHECK(to_string(NextStep::kNextTarget) == "next_target");
  CHECK(to_string(StepReason::kAttemptsExhausted) == "attempts_exhausted");
  CHECK(to_string(StepReason::kSilentRoute) == "silent_route");
  CHECK(to_string(StepReason::kPastDeadline) == "past_deadline");
}

}  // namespace
}  // namespace llmguard::internal
