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
#include "corpus_cases.h"

namespace llmguard::internal {
namespace {

using corpus::Case;

std::vector<Case> load_corpus() { return corpus::load(LLMGUARD_CORPUS_DIR "/errors.jsonl"); }

TEST_CASE("Every corpus response classifies to its expected category and delay") {
  const auto cases = load_corpus();
  std::set<std::string> ids;
  for (const Case& c : cases) {
    CAPTURE(c.id);
    CAPTURE(c.body);
    CHECK(ids.insert(c.id).second);
    CHECK_FALSE(c.source.empty());
    REQUIRE(parse_error_category(c.expected).has_value());
    if (!c.also.empty()) REQUIRE(parse_error_category(c.also).has_value());
    const Error e = classify_exchange(c.status, c.headers, c.body, c.stream, corpus::response_time(c.headers));
    CAPTURE(c.expected);
    CHECK(corpus::labelled(c, to_string(e.category)));
    if (c.retry_after_s) {
      REQUIRE(e.retry_after.has_value());
      CHECK(static_cast<double>(e.retry_after->count()) / 1000.0 == doctest::Approx(*c.retry_after_s).epsilon(0.001));
    } else {
      CHECK_FALSE(e.retry_after.has_value());
    }
    CHECK_FALSE(e.hint.empty());
  }
}

TEST_CASE("The corpus is broad: 350+ responses, 70+ providers, 15+ for every category, 40+ delays") {
  auto cases = load_corpus();
  for (const auto& slice : corpus::kUnseenSlices) {
    const std::string path = std::string(LLMGUARD_CORPUS_DIR "/") + slice.file;
    if (!std::ifstream(path).good()) continue;
    const auto unseen = corpus::load(path);
    cases.insert(cases.end(), unseen.begin(), unseen.end());
  }
  std::map<std::string, int> per_category;
  std::set<std::string> providers, ids;
  int streams = 0, delays = 0;
  for (const Case& c : cases) {
    CAPTURE(c.id);
    CHECK(ids.insert(c.id).second);  // unique across every slice
    CHECK_FALSE(c.source.empty());
    CHECK(parse_error_category(c.expected).has_value());
    if (!c.also.empty()) CHECK(parse_error_category(c.also).has_value());
    ++per_category[c.expected];
    providers.insert(c.provider);
    streams += c.stream ? 1 : 0;
    delays += c.retry_after_s ? 1 : 0;
  }
  CHECK(cases.size() >= 350);
  CHECK(providers.size() >= 70);
  CHECK(streams >= 8);
  CHECK(delays >= 40);
  for (const char* category : {"auth", "permission", "model_not_found", "rate_limit", "quota_exhausted",
                               "context_overflow", "content_filter", "bad_request", "transient"}) {
    CAPTURE(category);
    CHECK(per_category[category] >= 15);
  }
}

}  // namespace
}  // namespace llmguard::internal
