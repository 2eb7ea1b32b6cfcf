#include "health.h"

#include <doctest/doctest.h>

#include "llmguard/client.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;
using State = Client::TargetHealth::State;

const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(100));

BreakerPolicy breaker() {
  BreakerPolicy b;
  b.failure_threshold = 3;
  b.open_for = milliseconds(1000);
  b.auth_cooldown = milliseconds(60000);
  b.quota_cooldown = milliseconds(30000);
  b.model_not_found_cooldown = milliseconds(90000);
  return b;
}

TEST_CASE("Consecutive transient failures open the breaker at the threshold") {
  TargetHealth h(breaker(), {});
  CHECK_FALSE(h.on_failure(ErrorCategory::kTransient, t0));
  CHECK_FALSE(h.on_failure(ErrorCategory::kTimeout, t0));
  auto opened = h.on_failure(ErrorCategory::kConnection, t0);
  REQUIRE(opened);
  CHECK(opened->to == State::kOpen);
  CHECK(opened->open_for == milliseconds(1000));
  CHECK_FALSE(h.allow(t0 + milliseconds(999)));
  CHECK(h.snapshot(t0 + milliseconds(400)).reopens_in == milliseconds(600));
}

TEST_CASE("A success in between resets the count") {
  TargetHealth h(breaker(), {});
  h.on_failure(ErrorCategory::kTransient, t0);
  h.on_failure(ErrorCategory::kTransient, t0);
  h.on_success(t0);
  CHECK_FALSE(h.on_failure(ErrorCategory::kTransient, t0));
  CHECK(h.allow(t0));
}

TEST_CASE("Rate limits and bad requests do not count against the target's health") {
  TargetHealth h(breaker(), {});
  for (int i = 0; i < 10; ++i) {
    CHECK_FALSE(h.on_failure(ErrorCategory::kRateLimit, t0));
    CHECK_FALSE(h.on_failure(ErrorCategory::kBadRequest, t0));
  }
  CHECK(h.snapshot(t0).state == State::kClosed);
}

TEST_CASE("Half-open lets exactly one probe through; its outcome decides") {
  TargetHealth h(breaker(), {});
  for (int i = 0; i < 3; ++i) h.on_failure(ErrorCategory::kTransient, t0);
  const auto later = t0 + milliseconds(1000);
  CHECK(h.allow(later));        // the probe
  CHECK_FALSE(h.allow(later));  // everyone else waits
  CHECK(h.snapshot(later).state == State::kHalfOpen);
  SUBCASE("probe succeeds: closed") {
    auto t = h.on_success(later);
    REQUIRE(t);
    CHECK(t->to == State::kClosed);
    CHECK(h.allow(later));
  }
  SUBCASE("probe fails: open again for another period") {
    auto t = h.on_failure(ErrorCategory::kTransient, later);
    REQUIRE(t);
    CHECK(t->to == State::kOpen);
    CHECK_FALSE(h.allow(later + milliseconds(999)));
    CHECK(h.allow(later + milliseconds(1000)));
  }
  SUBCASE("probe abandoned: the next caller may probe") {
    h.on_abandoned();
    CHECK(h.allow(later));
  }
}

TEST_CASE("Auth, quota and model-not-found take the target out for their own cooldowns at once") {
  struct Row {
    ErrorCategory category;
    milliseconds cooldown;
  };
  for (Row row :
       {Row{ErrorCategory::kAuth, milliseconds(60000)}, Row{ErrorCategory::kQuotaExhausted, milliseconds(30000)},
        Row{ErrorCategory::kModelNotFound, milliseconds(90000)}}) {
    CAPTURE(to_string(row.category));
    TargetHealth h(breaker(), {});
    auto t = h.on_failure(row.category, t0);
    REQUIRE(t);
    CHECK(t->open_for == row.cooldown);
    CHECK(h.snapshot(t0).opened_by == row.category);
    CHECK_FALSE(h.allow(t0 + row.cooldown - milliseconds(1)));
    CHECK(h.allow(t0 + row.cooldown));
  }
}

TEST_CASE("reset closes an open breaker at once") {
  TargetHealth h(breaker(), {});
  h.on_failure(ErrorCategory::kAuth, t0);
  h.reset();
  CHECK(h.allow(t0));
  CHECK(h.snapshot(t0).state == State::kClosed);
}

TEST_CASE("Retry budget: retries stay within ratio x requests + minimum over the window") {
  RetryBudget budget{.ratio = 0.5, .min_retries = 2, .window = milliseconds(10000)};
  TargetHealth h(breaker(), budget);
  for (int i = 0; i < 10; ++i) h.note_request(t0);
  int granted = 0;
  while (h.try_spend_retry(t0) && granted < 100) ++granted;
  CHECK(granted == 7);  // 0.5 * 10 + 2
  // Requests older than the window no longer fund retries; nor do old retries count.
  const auto later = t0 + milliseconds(11000);
  CHECK(h.try_spend_retry(later));
  CHECK(h.try_spend_retry(later));
  CHECK_FALSE(h.try_spend_retry(later));
}

}  // namespace
}  // namespace llmguard::internal
