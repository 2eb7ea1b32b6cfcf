// Every real error response in tests/corpus/errors.jsonl (each citing where it
// was published) must classify to its expected category and delay.
#include <absl/time/time.h>
#include <doctest/doctest.h>
#include <simdjson.h>

#include <fstream>
#include <map>
#include <set>
#include <string>

#include "classify.h"

namespace llmguard::internal {
namespace {

struct Case {
  std::string id, provider, expected, body, source;
  int status = 0;
  Headers headers;
  bool stream = false;
  std::optional<double> retry_after_s;
};

std::vector<Case> load_corpus() {
  std::ifstream in(LLMGUARD_CORPUS_DIR "/errors.jsonl");
  REQUIRE(in.good());
  std::vector<Case> cases;
  simdjson::dom::parser parser;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    simdjson::dom::element e;
    REQUIRE(parser.parse(line).get(e) == simdjson::SUCCESS);
    Case c;
    c.id = std::string(std::string_view(e["id"]));
    c.provider = std::string(std::string_view(e["provider"]));
    c.expected = std::string(std::string_view(e["expected"]));
    c.body = std::string(std::string_view(e["body"]));
    c.source = std::string(std::string_view(e["source"]));
    c.status = static_cast<int>(int64_t(e["status"]));
    c.stream = bool(e["stream"]);
    for (auto [k, v] : simdjson::dom::object(e["headers"])) {
      c.headers.emplace_back(std::string(k), std::string(std::string_view(v)));
    }
    double seconds = 0;
    if (e["retry_after_s"].get_double().get(seconds) == simdjson::SUCCESS) c.retry_after_s = seconds;
    cases.push_back(std::move(c));
  }
  return cases;
}

// Responses are judged at the moment they were sent (their Date header), so
// HTTP-date delays in the corpus keep their meaning.
std::chrono::system_clock::time_point response_time(const Headers& headers) {
  if (const std::string* date = find_header(headers, "date")) {
    std::string value = *date;
    if (value.ends_with(" GMT")) value.replace(value.size() - 3, 3, "+0000");
    absl::Time t;
    std::string err;
    if (absl::ParseTime("%a, %d %b %Y %H:%M:%S %z", value, &t, &err)) return absl::ToChronoTime(t);
  }
  return std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 55));
}

TEST_CASE("Every corpus response classifies to its expected category and delay") {
  const auto cases = load_corpus();
  std::set<std::string> ids;
  for (const Case& c : cases) {
    CAPTURE(c.id);
    CAPTURE(c.body);
    CHECK(ids.insert(c.id).second);
    CHECK_FALSE(c.source.empty());
    REQUIRE(parse_error_category(c.expected).has_value());
    const Error e = classify_exchange(c.status, c.headers, c.body, c.stream, response_time(c.headers));
    CHECK(to_string(e.category) == c.expected);
    if (c.retry_after_s) {
      REQUIRE(e.retry_after.has_value());
      CHECK(static_cast<double>(e.retry_after->count()) / 1000.0 == doctest::Approx(*c.retry_after_s).epsilon(0.001));
    } else {
      CHECK_FALSE(e.retry_after.has_value());
    }
    CHECK_FALSE(e.hint.empty());
  }
}

TEST_CASE("The corpus is broad: 150+ responses, 15+ providers, 8+ for every actionable category") {
  const auto cases = load_corpus();
  std::map<std::string, int> per_category;
  std::set<std::string> providers;
  int streams = 0;
  for (const Case& c : cases) {
    ++per_category[c.expected];
    providers.insert(c.provider);
    streams += c.stream ? 1 : 0;
  }
  CHECK(cases.size() >= 150);
  CHECK(providers.size() >= 15);
  CHECK(streams >= 3);
  for (const char* category : {"auth", "permission", "model_not_found", "rate_limit", "quota_exhausted",
                               "context_overflow", "content_filter", "bad_request", "transient"}) {
    CAPTURE(category);
    CHECK(per_category[category] >= 8);
  }
}

}  // namespace
}  // namespace llmguard::internal
