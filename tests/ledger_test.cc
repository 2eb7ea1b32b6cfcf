#include "ledger.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "llmguard/client.h"
#include "llmguard/providers.h"
#include "mock_server.h"

namespace llmguard::internal {
namespace {

using std::chrono::sys_days;
using namespace std::chrono_literals;
using std::chrono::day;
using std::chrono::month;
using std::chrono::year;

std::chrono::system_clock::time_point at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  return sys_days{year{y} / month{m} / day{d}} + std::chrono::hours(hh) + std::chrono::minutes(mm) +
         std::chrono::seconds(ss);
}

TEST_CASE("Cost: uncached prompt, cache reads, cache writes and output each at their rate") {
  Price p{.input_per_mtok = 3.0, .output_per_mtok = 15.0, .cached_input_per_mtok = 0.30, .cache_write_per_mtok = 3.75};
  Usage u{.prompt_tokens = 10'000, .completion_tokens = 1'000, .cached_tokens = 6'000, .cache_write_tokens = 2'000};
  CHECK(cost_of(u, p) == doctest::Approx((2'000 * 3.0 + 6'000 * 0.30 + 2'000 * 3.75 + 1'000 * 15.0) / 1e6));
  Price plain{.input_per_mtok = 1.0, .output_per_mtok = 2.0};
  CHECK(cost_of(u, plain) == doctest::Approx((10'000 * 1.0 + 1'000 * 2.0) / 1e6));
}

TEST_CASE("Well-known prices match dated and -latest model names by longest prefix") {
  CHECK(well_known_price("gpt-4o-mini-2024-07-18")->input_per_mtok == doctest::Approx(0.15));
  CHECK(well_known_price("gpt-4o-2024-08-06")->input_per_mtok == doctest::Approx(2.50));
  CHECK(well_known_price("claude-3-5-haiku-latest")->output_per_mtok == doctest::Approx(4.0));
  CHECK(well_known_price("claude-opus-4-5-20251101")->input_per_mtok == doctest::Approx(5.0));
  CHECK(well_known_price("claude-opus-4-20250514")->input_per_mtok == doctest::Approx(15.0));
  CHECK(*well_known_price("claude-sonnet-4-5")->cache_write_per_mtok == doctest::Approx(3.75));
  CHECK_FALSE(well_known_price("my-finetune").has_value());
}

TEST_CASE("Reservations: all applicable budgets or none, with a message naming the budget") {
  BudgetBook book({Budget{.usd = 1.0}, Budget{.caller_tag = "bot", .tokens = 1000}});
  const auto now = at(2026, 3, 10);
  auto r1 = book.reserve("bot", 0.4, 600, now);
  REQUIRE(r1.ok());
  CHECK(r1->entries.size() == 2);
  auto r2 = book.reserve("bot", 0.4, 600, now);  // tokens: 600 + 600 > 1000
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().category == ErrorCategory::kBudgetExceeded);
  CHECK(r2.error().message.find("caller \"bot\"") != std::string::npos);
  CHECK(book.states(now)[0].reserved_usd == doctest::Approx(0.4));  // nothing half-reserved
  auto r3 = book.reserve("other", 0.5, 600, now);                   // only the client budget applies
  REQUIRE(r3.ok());
  CHECK(r3->entries.size() == 1);
  book.settle(*r1, 0.1, 120, now);
  auto s = book.states(now);
  CHECK(s[0].spent_usd == doctest::Approx(0.1));
  CHECK(s[0].reserved_usd == doctest::Approx(0.5));
  CHECK(s[1].spent_tokens == 120);
  CHECK(s[1].reserved_tokens == 0);
}

TEST_CASE("A zero budget refuses everything") {
  BudgetBook book({Budget{.usd = 0.0}});
  CHECK_FALSE(book.reserve("", 0.000001, 1, at(2026, 1, 1)).ok());
  CHECK(book.reserve("", 0.0, 0, at(2026, 1, 1)).ok());
}

TEST_CASE("Period keys change exactly at UTC hour, day and month boundaries") {
  using P = Budget::Period;
  CHECK(BudgetBook::period_of(P::kHour, at(2026, 5, 1, 13, 59, 59)) + 1 ==
        BudgetBook::period_of(P::kHour, at(2026, 5, 1, 14)));
  CHECK(BudgetBook::period_of(P::kDay, at(2026, 5, 1, 23, 59, 59)) + 1 ==
        BudgetBook::period_of(P::kDay, at(2026, 5, 2)));
  struct Edge {
    std::chrono::system_clock::time_point last_second, next_month;
  };
  const Edge edges[] = {
      {at(2026, 1, 31, 23, 59, 59), at(2026, 2, 1)},   // 31-day month
      {at(2026, 2, 28, 23, 59, 59), at(2026, 3, 1)},   // February
      {at(2028, 2, 29, 23, 59, 59), at(2028, 3, 1)},   // leap February
      {at(2026, 4, 30, 23, 59, 59), at(2026, 5, 1)},   // 30-day month
      {at(2026, 12, 31, 23, 59, 59), at(2027, 1, 1)},  // year end
  };
  for (const Edge& e : edges) {
    CHECK(BudgetBook::period_of(P::kMonth, e.last_second) + 1 == BudgetBook::period_of(P::kMonth, e.next_month));
    CHECK(BudgetBook::period_of(P::kMonth, e.last_second - 24h * 27) ==
          BudgetBook::period_of(P::kMonth, e.last_second));
  }
  CHECK(BudgetBook::period_of(P::kTotal, at(2030, 1, 1)) == 0);
}

TEST_CASE("Rollover: a new period starts empty and a late settlement is not carried into it") {
  for (auto [period, last, next] :
       {std::tuple{Budget::Period::kHour, at(2026, 6, 30, 23, 59, 59), at(2026, 7, 1, 0)},
        std::tuple{Budget::Period::kDay, at(2026, 6, 30, 23, 59, 59), at(2026, 7, 1, 0)},
        std::tuple{Budget::Period::kMonth, at(2026, 6, 30, 23, 59, 59), at(2026, 7, 1, 0)}}) {
    CAPTURE(static_cast<int>(period));
    BudgetBook book({Budget{.period = period, .usd = 1.0}});
    auto spent = book.reserve("", 0.6, 0, last);
    REQUIRE(spent.ok());
    book.settle(*spent, 0.6, 0, last);
    auto in_flight = book.reserve("", 0.3, 0, last);  // reserved before midnight...
    REQUIRE(in_flight.ok());
    CHECK_FALSE(book.reserve("", 0.2, 0, last).ok());
    book.settle(*in_flight, 0.3, 0, next);  // ...settled after it
    auto s = book.states(next);
    CHECK(s[0].spent_usd == doctest::Approx(0.0));     // not carried over
    CHECK(s[0].reserved_usd == doctest::Approx(0.0));  // not double-counted
    CHECK(book.reserve("", 1.0, 0, next).ok());        // the full budget again
  }
}

TEST_CASE("Ledger: exact and estimated usage are kept apart and aggregated every way") {
  Ledger ledger;
  ledger.record(
      {"a", "m1", "bot"},
      {.usage = {.prompt_tokens = 10, .completion_tokens = 5, .total_tokens = 15}, .cost_usd = 0.01, .latency = 200ms});
  ledger.record(
      {"a", "m1", ""},
      {.usage = {.prompt_tokens = 7, .completion_tokens = 3, .estimated = true}, .cost_usd = 0.002, .latency = 30ms});
  ledger.record({"b", "m2", "bot"}, {.failure = ErrorCategory::kRateLimit, .latency = 3s});
  auto s = ledger.snapshot();
  CHECK(s.total.attempts == 3);
  CHECK(s.total.failures == 1);
  CHECK(s.total.failures_by_category[static_cast<std::size_t>(ErrorCategory::kRateLimit)] == 1);
  CHECK(s.total.prompt_tokens == 10);
  CHECK(s.total.estimated_prompt_tokens == 7);
  CHECK(s.total.cost_usd == doctest::Approx(0.01));
  CHECK(s.total.estimated_cost_usd == doctest::Approx(0.002));
  CHECK(s.by_target.at("a").attempts == 2);
  CHECK(s.by_model.at("m2").failures == 1);
  CHECK(s.by_caller.at("bot").attempts == 2);
  CHECK(s.by_caller.at("").attempts == 1);
  CHECK(s.total.latency_buckets[0] == 1);  // 30 ms <= 0.05 s
  CHECK(s.total.latency_buckets[2] == 1);  // 200 ms <= 0.25 s
  CHECK(s.total.latency_buckets[6] == 1);  // 3 s <= 5 s
  CHECK(s.to_json().find(R"("by_caller":{"":{)") != std::string::npos);
}

// A checker for the Prometheus text exposition format (version 0.0.4): every
// line is a HELP/TYPE comment or a sample; samples follow their family's
// TYPE; names and labels are well-formed; counters end in _total; histogram
// buckets are cumulative and the +Inf bucket equals _count.
void check_exposition(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? ([-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf)|NaN))");
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::string current;
  std::map<std::string, double> last_bucket;  // per series (labels without le)
  std::map<std::string, double> inf_bucket, counts;
  std::istringstream in(text);
  int samples = 0;
  for (std::string line; std::getline(in, line);) {
    CAPTURE(line);
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      helped.insert(m[1]);
      continue;
    }
    if (std::regex_match(line, m, kType)) {
      REQUIRE(types.count(m[1]) == 0);  // one TYPE per family
      types[m[1]] = m[2];
      current = m[1];
      continue;
    }
    REQUIRE(std::regex_match(line, m, kSample));
    ++samples;
    const std::string name = m[1];
    const std::string labels = m[2];
    const double value = m[7] == "+Inf" ? INFINITY : std::stod(m[7]);
    REQUIRE(name.rfind(current, 0) == 0);  // belongs to the family just declared
    const std::string& type = types[current];
    if (type == "counter") {
      CHECK(current.size() > 6);
      CHECK(current.substr(current.size() - 6) == "_total");
      CHECK(value >= 0);
    }
    if (type == "histogram") {
      std::string series = std::regex_replace(labels, std::regex(R"(,?le="[^"]*")"), "");
      if (name == current + "_bucket") {
        CHECK(value >= last_bucket[series]);  // cumulative
        last_bucket[series] = value;
        if (labels.find("le=\"+Inf\"") != std::string::npos) inf_bucket[series] = value;
      } else if (name == current + "_count") {
        counts[series] = value;
      } else {
        CHECK(name == current + "_sum");
      }
    }
    CHECK(line.find("llmguard_") == 0);
  }
  CHECK(samples > 0);
  for (const auto& [name, type] : types) CHECK(helped.count(name) == 1);
  for (const auto& [series, n] : counts) CHECK(inf_bucket[series] == n);
}

TEST_CASE("Prometheus output passes the exposition-format check, label values escaped") {
  Ledger ledger;
  ledger.record({"a", "gpt-4o", "team \"x\"\\y\nz"},
                {.usage = {.prompt_tokens = 3, .completion_tokens = 4}, .cost_usd = 0.5, .latency = 70ms});
  ledger.record({"b", "claude", ""}, {.failure = ErrorCategory::kTimeout, .latency = 90s});
  const std::string text = ledger.snapshot().to_prometheus();
  check_exposition(text);
  CHECK(text.find(R"(caller="team \"x\"\\y\nz")") != std::string::npos);
  CHECK(text.find(R"(llmguard_failures_total{target="b",model="claude",caller="",category="timeout"} 1)") !=
        std::string::npos);
  CHECK(
      text.find(
          R"(llmguard_attempt_duration_seconds_bucket{target="a",model="gpt-4o",caller="team \"x\"\\y\nz",le="0.1"} 1)") !=
      std::string::npos);
}

// Parses `text` with the official Python client's exposition parser
// (python3-prometheus-client); returns its complaint, or "" when it read it all.
std::string parse_with_prometheus_client(const std::string& text) {
  const std::string base = "/tmp/llmguard-metrics-" + std::to_string(::getpid());
  std::ofstream(base + ".prom") << text;
  const std::string command =
      "/usr/bin/python3 -c 'import sys; from prometheus_client.parser import text_string_to_metric_families as p; "
      "fams = list(p(open(sys.argv[1]).read())); print(len(fams))' " +
      base + ".prom > " + base + ".out 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream out(base + ".out");
  std::string said((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  std::remove((base + ".prom").c_str());
  std::remove((base + ".out").c_str());
  return rc == 0 ? "" : said;
}

TEST_CASE(
    "Client::metrics: usage, budgets and breakers, read back by Prometheus's own parser; the caller label optional") {
  auto server = std::move(mock::MockServer::start({.require_key = "sk-good-0123456789"}).value());
  ClientOptions o;
  o.targets = {Target{.name = "primary",
                      .base_url = server->base_url(),
                      .model = "gpt-a",
                      .api_key = "sk-bad-0123456789",
                      .price = Price{.input_per_mtok = 1, .output_per_mtok = 2}},
               Target{.name = "backup",
                      .base_url = server->base_url(),
                      .model = "gpt-b",
                      .api_key = "sk-good-0123456789",
                      .price = Price{.input_per_mtok = 1, .output_per_mtok = 2}}};
  o.budgets = {Budget{.period = Budget::Period::kDay, .usd = 5.0}, Budget{.caller_tag = "agent-7", .tokens = 100'000}};
  auto client = std::move(Client::create(std::move(o)).value());
  ChatRequest request;
  request.messages = {Message::user("hello")};
  request.caller_tag = "agent-7";
  request.max_tokens = 50;
  auto reply = client->guarded_chat(request);
  REQUIRE(reply.ok());
  REQUIRE(reply->attempts.size() == 2);
  CHECK(reply->attempts[0].category == ErrorCategory::kAuth);

  const std::string text = client->metrics();
  check_exposition(text);
  CHECK(text.find(R"(caller="agent-7")") != std::string::npos);
  // The bad key opened the primary's breaker; the backup's is closed.
  CHECK(text.find(R"(llmguard_breaker_state{target="primary",state="open"} 1)") != std::string::npos);
  CHECK(text.find(R"(llmguard_breaker_state{target="primary",state="closed"} 0)") != std::string::npos);
  CHECK(text.find(R"(llmguard_breaker_state{target="backup",state="closed"} 1)") != std::string::npos);
  CHECK(text.find(R"(llmguard_budget_limit{budget="0",caller="",period="day",unit="usd"} 5)") != std::string::npos);
  CHECK(text.find(R"(llmguard_budget_limit{budget="1",caller="agent-7",period="total",unit="tokens"} 100000)") !=
        std::string::npos);
  CHECK(text.find(R"(llmguard_budget_reserved{budget="1",caller="agent-7",period="total",unit="tokens"} 0)") !=
        std::string::npos);
  const auto spent = text.find(R"(llmguard_budget_spent{budget="1",caller="agent-7",period="total",unit="tokens"} )");
  REQUIRE(spent != std::string::npos);
  CHECK(text.substr(spent, text.find('\n', spent) - spent).ends_with(" 0") == false);  // the reply's tokens
  CHECK(parse_with_prometheus_client(text) == "");

  const std::string lean = client->metrics({.caller_label = false});
  check_exposition(lean);
  CHECK(lean.find("caller=\"agent-7\",model") == std::string::npos);
  CHECK(lean.find(R"(llmguard_attempts_total{target="backup",model="gpt-b",outcome="success"} 1)") !=
        std::string::npos);
  CHECK(parse_with_prometheus_client(lean) == "");
}

}  // namespace
}  // namespace llmguard::internal
