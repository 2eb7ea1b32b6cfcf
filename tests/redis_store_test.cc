// The fleet's scripts against a real redis-server, with the time given by
// the test (now_ms), so that leases expire and buckets refill on cue.
#include "state/redis_store.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>

#include "redis_server.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;
using testing::RedisServer;
using Kind = RedisStore::Verdict::Kind;

struct Fixture {
  RedisServer server = *RedisServer::start({});
  RedisConnection redis{*parse_redis_url(server.url()), milliseconds(2000)};
  RedisStore store{redis, "t"};
};

RedisStore::Verdict admit(RedisStore& store, const RedisStore::AdmitArgs& args) {
  auto v = store.admit(args);
  REQUIRE_MESSAGE(v.ok(), v.error().message);
  return *v;
}

TEST_CASE("Concurrency slots are leases: taken, given back, or expired when their process is gone") {
  Fixture f;
  const Target::Limits two{.max_concurrency = 2};
  const std::int64_t t0 = 1'000'000;
  CHECK(admit(f.store, {.target = "a", .lease = "p1:1", .lease_ttl = milliseconds(500), .limits = two, .now_ms = t0})
            .kind == Kind::kGo);
  CHECK(
      admit(f.store, {.target = "a", .lease = "p1:2", .lease_ttl = milliseconds(500), .limits = two, .now_ms = t0 + 10})
          .kind == Kind::kGo);
  const auto full = admit(
      f.store, {.target = "a", .lease = "p2:1", .lease_ttl = milliseconds(500), .limits = two, .now_ms = t0 + 20});
  CHECK(full.kind == Kind::kSlotsTaken);
  CHECK(full.wait == milliseconds(480));  // until the first lease runs out
  // Another target's slots are its own.
  CHECK(
      admit(f.store, {.target = "b", .lease = "p2:1", .lease_ttl = milliseconds(500), .limits = two, .now_ms = t0 + 20})
          .kind == Kind::kGo);

  REQUIRE(f.store.finish("p1:2", "a", {}).ok());
  CHECK(
      admit(f.store, {.target = "a", .lease = "p2:2", .lease_ttl = milliseconds(500), .limits = two, .now_ms = t0 + 30})
          .kind == Kind::kGo);
  // p1:1's process died (never finished, never renewed): its slot is free after the TTL.
  CHECK(admit(f.store,
              {.target = "a", .lease = "p2:3", .lease_ttl = milliseconds(500), .limits = two, .now_ms = t0 + 499})
            .kind == Kind::kSlotsTaken);
  CHECK(admit(f.store,
              {.target = "a", .lease = "p2:3", .lease_ttl = milliseconds(500), .limits = two, .now_ms = t0 + 501})
            .kind == Kind::kGo);
}

TEST_CASE("A renewed lease outlives its TTL; an unrenewed one does not") {
  Fixture f;
  const Target::Limits one{.max_concurrency = 1};
  const std::int64_t t0 = 5'000'000;
  REQUIRE(admit(f.store, {.target = "a", .lease = "long", .lease_ttl = milliseconds(300), .limits = one, .now_ms = t0})
              .kind == Kind::kGo);
  REQUIRE(f.store.renew({.keys = {f.store.key("slots", "a")}, .leases = {"long"}}, milliseconds(300), t0 + 250).ok());
  CHECK(admit(f.store, {.target = "a", .lease = "x", .lease_ttl = milliseconds(300), .limits = one, .now_ms = t0 + 400})
            .kind == Kind::kSlotsTaken);
  CHECK(admit(f.store, {.target = "a", .lease = "x", .lease_ttl = milliseconds(300), .limits = one, .now_ms = t0 + 551})
            .kind == Kind::kGo);
}

TEST_CASE("The request bucket starts full, is shared, and refills continuously") {
  Fixture f;
  const Target::Limits rpm{.requests_per_minute = 60};  // one a second
  const std::int64_t t0 = 9'000'000;
  int admitted = 0;
  for (int i = 0; i < 70; ++i) {
    const auto v = admit(f.store, {.target = "a", .lease = "l" + std::to_string(i), .limits = rpm, .now_ms = t0});
    if (v.kind == Kind::kGo) ++admitted;
  }
  CHECK(admitted == 60);  // a full minute's allowance, and not one more
  const auto empty = admit(f.store, {.target = "a", .lease = "m", .limits = rpm, .now_ms = t0 + 500});
  CHECK(empty.kind == Kind::kBucketEmpty);
  CHECK(empty.wait == milliseconds(500));
  CHECK(admit(f.store, {.target = "a", .lease = "m", .limits = rpm, .now_ms = t0 + 1000}).kind == Kind::kGo);
  CHECK(admit(f.store, {.target = "a", .lease = "n", .limits = rpm, .now_ms = t0 + 1000}).kind == Kind::kBucketEmpty);

  // Tokens: a request larger than a minute's allowance waits for a full bucket.
  const Target::Limits tpm{.tokens_per_minute = 6000};
  CHECK(admit(f.store, {.target = "t", .lease = "a", .limits = tpm, .tokens = 5000, .now_ms = t0}).kind == Kind::kGo);
  const auto short_of = admit(f.store, {.target = "t", .lease = "b", .limits = tpm, .tokens = 2000, .now_ms = t0});
  CHECK(short_of.kind == Kind::kBucketEmpty);
  CHECK(short_of.wait == milliseconds(10'000));  // 1000 tokens at 100 a second
}

TEST_CASE("Budgets: reserved and settled atomically; a refusal takes nothing; expired holds come back") {
  Fixture f;
  const std::string key = f.store.budget_key("team:a", Budget::Period::kDay, 20'000);
  CHECK(key == "llmguard:{t}:budget:6:team:a:day:20000");
  const std::int64_t t0 = 20'000'000;
  const Target::Limits slots{.max_concurrency = 5};
  auto hold = [&](double usd) {
    return std::vector<RedisStore::Hold>{{.key = key, .limit_usd = 1.0, .usd = usd, .tokens = 100}};
  };
  const auto h1 = hold(0.4);
  REQUIRE(
      admit(f.store,
            {.target = "a", .lease = "l1", .lease_ttl = milliseconds(1000), .limits = slots, .holds = h1, .now_ms = t0})
          .kind == Kind::kGo);
  const auto h2 = hold(0.5);
  REQUIRE(
      admit(f.store,
            {.target = "a", .lease = "l2", .lease_ttl = milliseconds(1000), .limits = slots, .holds = h2, .now_ms = t0})
          .kind == Kind::kGo);
  const auto h3 = hold(0.2);
  const auto refused = admit(
      f.store,
      {.target = "a", .lease = "l3", .lease_ttl = milliseconds(1000), .limits = slots, .holds = h3, .now_ms = t0});
  REQUIRE(refused.kind == Kind::kBudgetRefused);
  CHECK(refused.budget == 0);
  CHECK(refused.held_usd == doctest::Approx(0.9));
  CHECK(refused.spent_usd == 0.0);
  // All or nothing: the refused attempt took no slot either.
  auto in_flight = f.redis.command({"ZCARD", f.store.key("slots", "a")});
  REQUIRE(in_flight.ok());
  CHECK(in_flight->integer == 2);

  // l1 spent less than it held; l2's process died.
  const RedisStore::Settled spent[] = {{.key = key, .usd = 0.1, .tokens = 40}};
  REQUIRE(f.store.finish("l1", "a", spent).ok());
  CHECK(admit(f.store, {.target = "a",
                        .lease = "l3",
                        .lease_ttl = milliseconds(1000),
                        .limits = slots,
                        .holds = h3,
                        .now_ms = t0 + 10})
            .kind == Kind::kGo);  // 0.1 spent + 0.5 held + 0.2
  const auto h4 = hold(0.3);
  CHECK(admit(f.store, {.target = "a",
                        .lease = "l4",
                        .lease_ttl = milliseconds(1000),
                        .limits = slots,
                        .holds = h4,
                        .now_ms = t0 + 20})
            .kind == Kind::kBudgetRefused);
  // l2 is past its lease: its 0.5 comes back (l3's 0.2 is still held).
  CHECK(admit(f.store, {.target = "a",
                        .lease = "l4",
                        .lease_ttl = milliseconds(1000),
                        .limits = slots,
                        .holds = h4,
                        .now_ms = t0 + 1001})
            .kind == Kind::kGo);

  // A settlement after its hold expired still counts what was spent.
  const RedisStore::Settled late[] = {{.key = key, .usd = 0.25, .tokens = 10}};
  REQUIRE(f.store.finish("l2", "a", late).ok());

  auto snapshot = f.store.snapshot_json(t0 + 1002);
  REQUIRE(snapshot.ok());
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(*snapshot);
  CHECK(std::string_view(doc["namespace"]) == "t");
  simdjson::dom::array budgets = doc["budgets"];
  REQUIRE(budgets.size() == 1);
  simdjson::dom::element b = budgets.at(0);
  CHECK(std::string_view(b["caller_tag"]) == "team:a");
  CHECK(std::string_view(b["period"]) == "day");
  CHECK(double(b["spent_usd"]) == doctest::Approx(0.35));
  CHECK(int64_t(b["spent_tokens"]) == 50);
  CHECK(double(b["reserved_usd"]) == doctest::Approx(0.5));  // l3 and l4
  CHECK(int64_t(b["reservations"]) == 2);
  CHECK(int64_t(b["leases_expired"]) == 1);
  simdjson::dom::array limits = doc["limits"];
  REQUIRE(limits.size() == 1);
  CHECK(int64_t(limits.at(0)["in_flight"]) == 2);  // l3 and l4's slots
}

TEST_CASE("A breaker opened by one process is seen by every admission until it expires, or is reset") {
  Fixture f;
  REQUIRE(f.store.open_breaker("a", "auth", milliseconds(60'000), "p1").ok());
  const auto v = admit(f.store, {.target = "a", .lease = "x", .now_ms = 1});
  CHECK(v.kind == Kind::kBreakerOpen);
  CHECK(v.reason == "auth");
  CHECK(v.wait > milliseconds(59'000));
  // A shorter opening never cuts a longer one short.
  REQUIRE(f.store.open_breaker("a", "transient", milliseconds(10), "p2").ok());
  CHECK(admit(f.store, {.target = "a", .lease = "x", .now_ms = 1}).reason == "auth");
  auto open = f.store.open_breakers();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK((*open)[0].target == "a");
  REQUIRE(f.store.reset_target("a", "p1").ok());
  CHECK(admit(f.store, {.target = "a", .lease = "x", .now_ms = 1}).kind == Kind::kGo);
}

TEST_CASE("Namespaces share nothing") {
  Fixture f;
  RedisStore other(f.redis, "u");
  const Target::Limits one{.max_concurrency = 1};
  CHECK(admit(f.store, {.target = "a", .lease = "1", .limits = one, .now_ms = 1}).kind == Kind::kGo);
  CHECK(admit(other, {.target = "a", .lease = "2", .limits = one, .now_ms = 1}).kind == Kind::kGo);
  CHECK(admit(f.store, {.target = "a", .lease = "3", .limits = one, .now_ms = 1}).kind == Kind::kSlotsTaken);
}

TEST_CASE("A flushed script cache and a restarted server: the scripts are sent again, the state starts over") {
  Fixture f;
  const Target::Limits one{.max_concurrency = 1};
  CHECK(admit(f.store, {.target = "a", .lease = "1", .limits = one, .now_ms = 1}).kind == Kind::kGo);
  REQUIRE(f.redis.command({"SCRIPT", "FLUSH"}).ok());
  CHECK(admit(f.store, {.target = "a", .lease = "2", .limits = one, .now_ms = 1}).kind == Kind::kSlotsTaken);
  REQUIRE(f.server.restart({}));
  // The first command after the restart fails (the server closed the old connection); the next connects again.
  auto lost = f.store.admit({.target = "a", .lease = "3", .limits = one, .now_ms = 1});
  REQUIRE_FALSE(lost.ok());
  CHECK(lost.error().category == ErrorCategory::kConnection);
  CHECK(lost.error().message.find("redis redis://127.0.0.1:") != std::string::npos);
  CHECK(admit(f.store, {.target = "a", .lease = "3", .limits = one, .now_ms = 1}).kind == Kind::kGo);
}

TEST_CASE("Error replies (a replica, out of memory) are kConnection errors that name Redis") {
  Fixture f;
  REQUIRE(f.redis.command({"CONFIG", "SET", "maxmemory", "1"}).ok());
  const std::vector<RedisStore::Hold> holds = {
      {.key = f.store.budget_key("", Budget::Period::kTotal, 0), .limit_usd = 5.0, .usd = 1.0}};
  auto refused = f.store.admit({.target = "a", .lease = "1", .holds = holds, .now_ms = 1});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().category == ErrorCategory::kConnection);
  CHECK(refused.error().message.find("OOM") != std::string::npos);
}

TEST_CASE("The retry budget is the fleet's: requests and retries counted in one window for every process") {
  Fixture f;
  const Target::Limits limits{.requests_per_minute = 1e6};
  const RetryBudget budget{.ratio = 0.5, .min_retries = 1, .window = std::chrono::seconds(10)};
  const std::int64_t t0 = 40'000'000;
  auto attempt = [&](std::string lease, std::int64_t now, bool first, bool retry) {
    return admit(f.store, {.target = "a",
                           .lease = lease,
                           .limits = limits,
                           .now_ms = now,
                           .retry_budget = budget,
                           .first_on_target = first,
                           .retry = retry});
  };
  // Four calls (two "processes"): four requests, so 0.5 * 4 + 1 = 3 retries.
  for (int i = 0; i < 4; ++i)
    CHECK(attempt("p" + std::to_string(i % 2) + ":" + std::to_string(i), t0 + i, true, false).kind == Kind::kGo);
  CHECK(attempt("p0:r1", t0 + 100, false, true).kind == Kind::kGo);
  CHECK(attempt("p1:r2", t0 + 200, false, true).kind == Kind::kGo);
  CHECK(attempt("p0:r3", t0 + 1'100, false, true).kind == Kind::kGo);
  const auto refused = attempt("p1:r4", t0 + 1'200, false, true);
  CHECK(refused.kind == Kind::kRetryBudgetSpent);
  CHECK(refused.retries == 3);
  CHECK(refused.requests == 4);
  // A refused retry took nothing: the bucket was last taken from by r3.
  auto taken_at = f.redis.command({"HGET", f.store.key("bucket", "a"), "at"});
  REQUIRE(taken_at.ok());
  CHECK(taken_at->text == std::to_string(t0 + 1'100));
  // Attempts that are neither a first nor a retry (another try after a fresh credential) are not counted.
  CHECK(admit(f.store, {.target = "a", .lease = "plain", .limits = limits, .now_ms = t0 + 1'300}).kind == Kind::kGo);
  // Five requests: room for 3.5 retries, so one more; six: 4, none; seven: 4.5, one.
  CHECK(attempt("p0:5", t0 + 2'000, true, false).kind == Kind::kGo);
  CHECK(attempt("p1:r5", t0 + 2'100, false, true).kind == Kind::kGo);
  CHECK(attempt("p0:6", t0 + 2'200, true, false).kind == Kind::kGo);
  CHECK(attempt("p1:r6", t0 + 2'300, false, true).kind == Kind::kRetryBudgetSpent);
  CHECK(attempt("p0:7", t0 + 2'400, true, false).kind == Kind::kGo);
  CHECK(attempt("p1:r7", t0 + 2'500, false, true).kind == Kind::kGo);
  // Past the window the old seconds no longer count: min_retries again.
  const std::int64_t later = t0 + 13'000;
  CHECK(attempt("p0:r7", later, false, true).kind == Kind::kGo);
  const auto after = attempt("p0:r8", later + 10, false, true);
  CHECK(after.kind == Kind::kRetryBudgetSpent);
  CHECK(after.requests == 0);
  CHECK(after.retries == 1);
  // Another target's budget is its own.
  CHECK(admit(f.store,
              {.target = "b", .lease = "b:r", .limits = limits, .now_ms = later, .retry_budget = budget, .retry = true})
            .kind == Kind::kGo);
}

}  // namespace
}  // namespace llmguard::internal
