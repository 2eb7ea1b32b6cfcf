#include "limiter.h"

#include <doctest/doctest.h>

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const TargetLimiter::SteadyTime kStart{std::chrono::hours(1000)};

TEST_CASE("No limits: everything is admitted") {
  TargetLimiter l({}, kStart);
  CHECK_FALSE(l.limited());
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(l.admit(100000, kStart).has_value());
}

TEST_CASE("Concurrency: a full house waits for a release, and a slot frees when an attempt ends") {
  TargetLimiter l({.max_concurrency = 2}, kStart);
  CHECK_FALSE(l.admit(0, kStart).has_value());
  CHECK_FALSE(l.admit(0, kStart).has_value());
  auto wait = l.admit(0, kStart);
  REQUIRE(wait.has_value());
  CHECK(*wait == TargetLimiter::kUntilReleased);  // woken by release(), never polled
  l.release();
  CHECK_FALSE(l.admit(0, kStart).has_value());
}

TEST_CASE("Requests per minute: a minute's burst, then one per interval, with the exact wait") {
  TargetLimiter l({.requests_per_minute = 60}, kStart);
  for (int i = 0; i < 60; ++i) REQUIRE_FALSE(l.admit(0, kStart).has_value());
  auto wait = l.admit(0, kStart);
  REQUIRE(wait.has_value());
  CHECK(*wait == milliseconds(1000));  // 60/min refills one a second
  CHECK(l.admit(0, kStart + milliseconds(500)).has_value());
  CHECK_FALSE(l.admit(0, kStart + milliseconds(1000)).has_value());
}

TEST_CASE("Tokens per minute count prompt + max_tokens; an oversized request waits for a full bucket") {
  TargetLimiter l({.tokens_per_minute = 6000}, kStart);
  CHECK_FALSE(l.admit(4000, kStart).has_value());
  auto wait = l.admit(4000, kStart);  // 2000 left, 4000 needed at 100 tokens/s
  REQUIRE(wait.has_value());
  CHECK(*wait == milliseconds(20000));
  CHECK_FALSE(l.admit(4000, kStart + seconds(20)).has_value());
  // Larger than a minute's allowance: admitted once the bucket is full again.
  auto big = l.admit(50000, kStart + seconds(20));
  REQUIRE(big.has_value());
  CHECK(*big == milliseconds(60000));
  CHECK_FALSE(l.admit(50000, kStart + seconds(80)).has_value());
}

TEST_CASE("A 429 halves the request rate and stops the burst; answers bring it back") {
  TargetLimiter l({.requests_per_minute = 120}, kStart);
  CHECK_FALSE(l.admit(0, kStart).has_value());
  l.on_throttled(kStart);
  auto wait = l.admit(0, kStart);
  REQUIRE(wait.has_value());
  CHECK(*wait == milliseconds(1000));  // 120/min halved: one a second, not two
  for (int i = 0; i < 10; ++i) l.on_throttled(kStart);
  CHECK(*l.admit(0, kStart) == milliseconds(8000));  // floor: 1/16 of the rate
  for (int i = 0; i < 20; ++i) l.on_answered(kStart);
  CHECK(*l.admit(0, kStart) == milliseconds(500));  // fully recovered
}

}  // namespace
}  // namespace llmguard::internal
