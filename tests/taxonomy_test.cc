// The taxonomy table against the contract: DESIGN.md's table of categories
// and default actions (transcribed below, row by row) and the user docs'
// table (docs/errors.md, read from the tree), so the three cannot drift.
#include "taxonomy.h"

#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "llmguard/error.h"

namespace llmguard::internal {
namespace {

struct Contract {
  std::string_view name;
  DefaultAction action;
  BreakerEffect breaker;
  bool from_attempt;
};

// DESIGN.md, "Error taxonomy": "no retry on this target; fall back; long
// cooldown" is kNextTarget with a cooldown; "retry with backoff + jitter,
// then fall back; feeds the circuit breaker" is kRetry counting failures;
// "treated as transient for at most one retry" is kRetryOnce; the local
// outcomes never reach the breaker.
constexpr Contract kDesign[] = {
    {"auth", DefaultAction::kNextTarget, BreakerEffect::kAuthCooldown, true},
    {"permission", DefaultAction::kNextTarget, BreakerEffect::kHealthy, true},
    {"model_not_found", DefaultAction::kNextTarget, BreakerEffect::kModelCooldown, true},
    {"rate_limit", DefaultAction::kRetry, BreakerEffect::kHealthy, true},
    {"quota_exhausted", DefaultAction::kNextTarget, BreakerEffect::kQuotaCooldown, true},
    {"context_overflow", DefaultAction::kNextTarget, BreakerEffect::kHealthy, true},
    {"content_filter", DefaultAction::kFail, BreakerEffect::kHealthy, true},
    {"bad_request", DefaultAction::kFail, BreakerEffect::kHealthy, true},
    {"transient", DefaultAction::kRetry, BreakerEffect::kCountsFailure, true},
    {"timeout", DefaultAction::kRetry, BreakerEffect::kCountsFailure, true},
    {"connection", DefaultAction::kRetry, BreakerEffect::kCountsFailure, true},
    {"cancelled", DefaultAction::kFail, BreakerEffect::kNone, false},
    {"budget_exceeded", DefaultAction::kNextTarget, BreakerEffect::kNone, false},
    {"circuit_open", DefaultAction::kNextTarget, BreakerEffect::kNone, false},
    {"unknown", DefaultAction::kRetryOnce, BreakerEffect::kCountsFailure, true},
};

TEST_CASE("Every category's row matches the design's table") {
  REQUIRE(std::size(kDesign) == kTaxonomy.size());
  for (std::size_t i = 0; i < kTaxonomy.size(); ++i) {
    CAPTURE(kDesign[i].name);
    CHECK(kTaxonomy[i].name == kDesign[i].name);
    CHECK(kTaxonomy[i].action == kDesign[i].action);
    CHECK(kTaxonomy[i].breaker == kDesign[i].breaker);
    CHECK(kTaxonomy[i].from_attempt == kDesign[i].from_attempt);
    CHECK(to_string(kTaxonomy[i].category) == kDesign[i].name);
    CHECK(parse_error_category(kDesign[i].name) == kTaxonomy[i].category);
  }
  CHECK_FALSE(parse_error_category("rate-limit").has_value());
}

TEST_CASE("Retryable is what the default action retries") {
  for (const CategoryInfo& info : kTaxonomy) {
    Error e;
    e.category = info.category;
    CAPTURE(info.name);
    CHECK(e.retryable() == (info.action == DefaultAction::kRetry || info.action == DefaultAction::kRetryOnce));
  }
}

TEST_CASE("The user docs' taxonomy table lists the same categories, in order") {
  std::ifstream docs(LLMGUARD_DOCS_DIR "/errors.md");
  REQUIRE(docs.good());
  std::vector<std::string> names;
  bool in_table = false;
  for (std::string line; std::getline(docs, line);) {
    if (line.starts_with("| category | meaning |")) in_table = true;
    else if (in_table && !line.starts_with("|")) break;
    else if (in_table && line.starts_with("| `")) names.push_back(line.substr(3, line.find('`', 3) - 3));
  }
  REQUIRE(names.size() == kTaxonomy.size());
  for (std::size_t i = 0; i < names.size(); ++i) CHECK(names[i] == kTaxonomy[i].name);
}

}  // namespace
}  // namespace llmguard::internal
