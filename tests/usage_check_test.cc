// checked_usage: the one rule that turns a provider's reported usage into
// the Usage llmguard accounts, whatever the provider sent.
#include "usage_check.h"

#include <doctest/doctest.h>

#include <limits>
#include <vector>

namespace llmguard::internal {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

ReportedUsage reported(std::int64_t prompt, std::int64_t completion) {
  return {.reported = true, .prompt = ReportedCount::of(prompt), .completion = ReportedCount::of(completion)};
}

TEST_CASE("Nothing reported: the estimates, marked estimated") {
  const Usage u = checked_usage(ReportedUsage{}, 40, 7);
  CHECK(u.prompt_tokens == 40);
  CHECK(u.completion_tokens == 7);
  CHECK(u.total_tokens == 47);
  CHECK(u.cached_tokens == 0);
  CHECK(u.estimated);
}

TEST_CASE("Sound reported counts are accounted as sent, not estimated") {
  ReportedUsage r = reported(120, 30);
  r.cached = ReportedCount::of(100);
  r.reasoning = ReportedCount::of(12);
  r.total = ReportedCount::of(150);
  const Usage u = checked_usage(r, 999, 999);
  CHECK(u.prompt_tokens == 120);
  CHECK(u.completion_tokens == 30);
  CHECK(u.cached_tokens == 100);
  CHECK(u.reasoning_tokens == 12);
  CHECK(u.total_tokens == 150);
  CHECK_FALSE(u.estimated);
}

TEST_CASE("A negative prompt or completion count is replaced by its estimate") {
  Usage u = checked_usage(reported(-5000, 30), 40, 7);
  CHECK(u.prompt_tokens == 40);
  CHECK(u.completion_tokens == 30);
  CHECK(u.total_tokens == 70);
  CHECK(u.estimated);
  u = checked_usage(reported(10, kMin), 40, 7);
  CHECK(u.prompt_tokens == 10);
  CHECK(u.completion_tokens == 7);
  CHECK(u.estimated);
}

TEST_CASE("An invalid or absent prompt or completion count in a reported usage is replaced by its estimate") {
  ReportedUsage r = reported(10, 20);
  r.prompt = ReportedCount::invalid();
  Usage u = checked_usage(r, 40, 7);
  CHECK(u.prompt_tokens == 40);
  CHECK(u.completion_tokens == 20);
  CHECK(u.estimated);
  r = {.reported = true, .completion = ReportedCount::of(20)};  // no prompt_tokens at all
  u = checked_usage(r, 40, 7);
  CHECK(u.prompt_tokens == 40);
  CHECK(u.estimated);
}

TEST_CASE("Counts are clamped to 2^40 and sums saturate: int64 max cannot overflow") {
  ReportedUsage r = reported(kMax, kMax);
  r.cached = ReportedCount::of(kMax);
  r.cache_write = ReportedCount::of(kMax);
  r.reasoning = ReportedCount::of(kMax);
  r.total = ReportedCount::of(kMax);
  const Usage u = checked_usage(r, kMax, kMax);
  CHECK(u.prompt_tokens == kMaxTokenCount);
  CHECK(u.completion_tokens == kMaxTokenCount);
  CHECK(u.cached_tokens == kMaxTokenCount);
  CHECK(u.cache_write_tokens == 0);  // the prompt is all cache reads already
  CHECK(u.reasoning_tokens == kMaxTokenCount);
  CHECK(u.total_tokens == 2 * kMaxTokenCount);
  CHECK_FALSE(u.estimated);
}

TEST_CASE("Estimates are clamped too") {
  const Usage u = checked_usage(ReportedUsage{}, -3, kMax);
  CHECK(u.prompt_tokens == 0);
  CHECK(u.completion_tokens == kMaxTokenCount);
  CHECK(u.total_tokens == kMaxTokenCount);
}

TEST_CASE("total_tokens is at least prompt + completion: a reported 0 total is not believed") {
  ReportedUsage r = reported(100, 20);
  r.total = ReportedCount::of(0);
  CHECK(checked_usage(r, 1, 1).total_tokens == 120);
  CHECK_FALSE(checked_usage(r, 1, 1).estimated);
  r.total = ReportedCount::of(500);  // a provider's own larger total (e.g. hidden tool tokens) stands
  CHECK(checked_usage(r, 1, 1).total_tokens == 500);
  r.total = ReportedCount::of(-1);
  CHECK(checked_usage(r, 1, 1).total_tokens == 120);
  CHECK(checked_usage(r, 1, 1).estimated);
  r.total = {};
  CHECK(checked_usage(r, 1, 1).total_tokens == 120);
  CHECK_FALSE(checked_usage(r, 1, 1).estimated);
}

TEST_CASE("Parts cannot exceed their whole: cached and cache writes fit the prompt, reasoning the completion") {
  ReportedUsage r = reported(100, 20);
  r.cached = ReportedCount::of(5000);
  r.cache_write = ReportedCount::of(10);
  r.reasoning = ReportedCount::of(21);
  Usage u = checked_usage(r, 1, 1);
  CHECK(u.cached_tokens == 100);
  CHECK(u.cache_write_tokens == 0);
  CHECK(u.reasoning_tokens == 20);
  r.cached = ReportedCount::of(60);
  r.cache_write = ReportedCount::of(60);
  u = checked_usage(r, 1, 1);
  CHECK(u.cached_tokens == 60);
  CHECK(u.cache_write_tokens == 40);
}

TEST_CASE("A negative or invalid part is dropped and marks the usage estimated; an absent one is 0") {
  ReportedUsage r = reported(100, 20);
  r.cached = ReportedCount::of(-50);
  Usage u = checked_usage(r, 1, 1);
  CHECK(u.cached_tokens == 0);
  CHECK(u.prompt_tokens == 100);
  CHECK(u.estimated);
  r.cached = {};
  r.reasoning = ReportedCount::invalid();
  u = checked_usage(r, 1, 1);
  CHECK(u.reasoning_tokens == 0);
  CHECK(u.estimated);
  r.reasoning = {};
  CHECK_FALSE(checked_usage(r, 1, 1).estimated);
}

TEST_CASE("Whatever is reported, the accounted usage keeps its invariants") {
  const std::vector<ReportedCount> values = {{},
                                             ReportedCount::invalid(),
                                             ReportedCount::of(0),
                                             ReportedCount::of(1),
                                             ReportedCount::of(-1),
                                             ReportedCount::of(7),
                                             ReportedCount::of(kMaxTokenCount + 1),
                                             ReportedCount::of(kMax),
                                             ReportedCount::of(kMin)};
  int cases = 0;
  for (const auto& p : values) {
    for (const auto& c : values) {
      for (const auto& part : values) {
        for (const auto& total : values) {
          const ReportedUsage r{.reported = true,
                                .prompt = p,
                                .completion = c,
                                .cached = part,
                                .cache_write = part,
                                .reasoning = part,
                                .total = total};
          const Usage u = checked_usage(r, 11, 13);
          CAPTURE(cases);
          REQUIRE(u.prompt_tokens >= 0);
          REQUIRE(u.prompt_tokens <= kMaxTokenCount);
          REQUIRE(u.completion_tokens >= 0);
          REQUIRE(u.completion_tokens <= kMaxTokenCount);
          REQUIRE(u.cached_tokens >= 0);
          REQUIRE(u.cache_write_tokens >= 0);
          REQUIRE(u.cached_tokens + u.cache_write_tokens <= u.prompt_tokens);
          REQUIRE(u.reasoning_tokens >= 0);
          REQUIRE(u.reasoning_tokens <= u.completion_tokens);
          REQUIRE(u.total_tokens >= u.prompt_tokens + u.completion_tokens);
          REQUIRE(u.total_tokens <= 2 * kMaxTokenCount);
          // A count that could not be used as sent always shows.
          const bool unusable_required = p.state != ReportedCount::State::kValid || p.value < 0 ||
                                         c.state != ReportedCount::State::kValid || c.value < 0;
          if (unusable_required) REQUIRE(u.estimated);
          ++cases;
        }
      }
    }
  }
  CHECK(cases == 9 * 9 * 9 * 9);
}

TEST_CASE("Counts reported as parts add up, without hiding a bad part") {
  CHECK(sum_counts({{}, {}}) == ReportedCount{});
  CHECK(sum_counts({ReportedCount::of(10), {}, ReportedCount::of(5)}) == ReportedCount::of(15));
  CHECK(sum_counts({ReportedCount::of(10), ReportedCount::invalid()}) == ReportedCount::invalid());
  CHECK(sum_counts({ReportedCount::of(1000), ReportedCount::of(-5)}).value < 0);
  CHECK(sum_counts({ReportedCount::of(kMax), ReportedCount::of(kMax)}) == ReportedCount::of(kMax));
  const AnthropicUsageParts parts{
      .input = ReportedCount::of(10), .cache_read = ReportedCount::of(200), .cache_write = ReportedCount::of(5)};
  CHECK(parts.prompt() == ReportedCount::of(215));
}

TEST_CASE("Token estimates round up and cannot overflow") {
  CHECK(estimate_tokens(0) == 0);
  CHECK(estimate_tokens(1) == 1);
  CHECK(estimate_tokens(4) == 1);
  CHECK(estimate_tokens(5) == 2);
  CHECK(estimate_tokens(std::numeric_limits<std::size_t>::max()) > 0);
  ChatResponse r;
  r.content = "abcd";
  r.refusal = "no";
  r.tool_calls.push_back({.arguments_json = R"({"a":1})"});
  CHECK(reply_bytes(r) == 4 + 2 + 7);
}

}  // namespace
}  // namespace llmguard::internal
