// Prints how the classifier does on the real error responses of
// tests/corpus: the corpus its rules were written from, and the held-back
// slices no rule was written from (corpus::kUnseenSlices, those the directory
// has), each and together, by provider, source and category.
//   corpus_report [--misses] [--min-heldback FRACTION] CORPUS_DIR
// Exits 1 when the held-back slice scores below FRACTION (a regression
// guard: its cases are never used to write rules).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "classify.h"
#include "corpus_cases.h"
#include "taxonomy.h"

namespace llmguard {
namespace {

using corpus::Case;

struct Tally {
  int cases = 0, category = 0, action = 0, status_only = 0, delays = 0, delays_right = 0;
  void add(const Tally& t) {
    cases += t.cases;
    category += t.category;
    action += t.action;
    status_only += t.status_only;
    delays += t.delays;
    delays_right += t.delays_right;
  }
};

// What a classifier that reads nothing but the status code would say.
ErrorCategory by_status_alone(int status) {
  switch (status) {
    case 401:
      return ErrorCategory::kAuth;
    case 402:
      return ErrorCategory::kQuotaExhausted;
    case 403:
      return ErrorCategory::kPermission;
    case 404:
      return ErrorCategory::kModelNotFound;
    case 413:
      return ErrorCategory::kContextOverflow;
    case 429:
      return ErrorCategory::kRateLimit;
    case 400:
    case 422:
      return ErrorCategory::kBadRequest;
    default:
      return status >= 500 || status == 408 ? ErrorCategory::kTransient : ErrorCategory::kUnknown;
  }
}

bool same_action(const Case& c, ErrorCategory got) {
  auto action_of = [](std::string_view name) { return internal::category_info(*parse_error_category(name)).action; };
  const auto action = internal::category_info(got).action;
  return action == action_of(c.expected) || (!c.also.empty() && action == action_of(c.also));
}

// Where a case was published, from its citation.
std::string source_kind(const Case& c) {
  const std::string& s = c.source;
  auto has = [&s](std::string_view part) { return s.find(part) != std::string::npos; };
  if (has("/issues/") || has("/pull/") || has("/discussions/") || has("stackoverflow") || has("community.") ||
      has("forum") || has("reddit")) {
    return "issue or forum thread";
  }
  if (has("test") || has("fixture") || has("cassette") || has("/blob/") || has("/tree/")) return "code or fixture";
  return "documentation";
}

struct Report {
  std::map<std::string, Tally> by_provider, by_source, by_category;
  Tally total;
  std::vector<std::string> misses;
};

Report evaluate(const std::vector<Case>& cases, std::string_view slice) {
  Report r;
  for (const Case& c : cases) {
    const Error e =
        internal::classify_exchange(c.status, c.headers, c.body, c.stream, corpus::response_time(c.headers));
    Tally t;
    t.cases = 1;
    t.category = corpus::labelled(c, to_string(e.category)) ? 1 : 0;
    t.action = same_action(c, e.category) ? 1 : 0;
    t.status_only = corpus::labelled(c, to_string(by_status_alone(c.status))) ? 1 : 0;
    if (c.retry_after_s) {
      t.delays = 1;
      const double got = e.retry_after ? static_cast<double>(e.retry_after->count()) / 1000.0 : -1;
      t.delays_right = std::abs(got - *c.retry_after_s) <= std::max(0.5, *c.retry_after_s * 0.01) ? 1 : 0;
    }
    if (!t.category) {
      std::string evidence;
      internal::classify_exchange(c.status, c.headers, c.body, c.stream, corpus::response_time(c.headers), &evidence);
      r.misses.push_back(fmt::format("{} {} ({}, HTTP {}): expected {}{}, got {} by {} on {}", slice, c.id, c.provider,
                                     c.status, c.expected, c.also.empty() ? "" : "/" + c.also, to_string(e.category),
                                     e.rule, evidence));
    }
    r.by_provider[c.provider].add(t);
    r.by_source[source_kind(c)].add(t);
    r.by_category[c.expected].add(t);
    r.total.add(t);
  }
  return r;
}

std::string percent(int part, int whole) { return whole == 0 ? "–" : fmt::format("{:.1f}%", 100.0 * part / whole); }

void print_rows(std::string_view heading, const std::map<std::string, Tally>& rows) {
  fmt::print("\n| {} | cases | category | action | status alone |\n|---|---|---|---|---|\n", heading);
  for (const auto& [name, t] : rows) {
    fmt::print("| {} | {} | {} | {} | {} |\n", name, t.cases, percent(t.category, t.cases), percent(t.action, t.cases),
               percent(t.status_only, t.cases));
  }
}

void print_report(std::string_view title, const Report& r) {
  const Tally& t = r.total;
  fmt::print(
      "\n## {}\n\n{} cases from {} providers: category {}, default action {}, stated delays {} of {}; "
      "status code alone: category {}.\n",
      title, t.cases, r.by_provider.size(), percent(t.category, t.cases), percent(t.action, t.cases), t.delays_right,
      t.delays, percent(t.status_only, t.cases));
  int perfect = 0;
  std::map<std::string, Tally> imperfect;
  for (const auto& [name, p] : r.by_provider) {
    if (p.category == p.cases) ++perfect;
    else imperfect.emplace(name, p);
  }
  fmt::print("Providers with every case right: {} of {}.\n", perfect, r.by_provider.size());
  if (!imperfect.empty()) print_rows("provider (below 100%)", imperfect);
  print_rows("source", r.by_source);
  print_rows("expected category", r.by_category);
}

}  // namespace
}  // namespace llmguard

int main(int argc, char** argv) {
  bool show_misses = false;
  double min_heldback = 0;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--misses") show_misses = true;
    else if (arg == "--min-heldback" && i + 1 < argc) min_heldback = std::atof(argv[++i]);
    else dir = arg;
  }
  if (dir.empty()) {
    fmt::print(stderr, "usage: corpus_report [--misses] [--min-heldback FRACTION] CORPUS_DIR\n");
    return 2;
  }
  try {
    using llmguard::Report;
    const Report corpus = llmguard::evaluate(llmguard::corpus::load(dir + "/errors.jsonl"), "corpus");
    std::vector<std::pair<const llmguard::corpus::Slice*, Report>> unseen;
    std::vector<llmguard::corpus::Case> all_unseen;
    for (const auto& slice : llmguard::corpus::kUnseenSlices) {
      const std::string path = dir + "/" + slice.file;
      if (!std::filesystem::exists(path)) continue;
      const auto cases = llmguard::corpus::load(path);
      all_unseen.insert(all_unseen.end(), cases.begin(), cases.end());
      unseen.emplace_back(&slice, llmguard::evaluate(cases, slice.name));
    }
    fmt::print("# Classifier on real error responses\n");
    for (const auto& [slice, report] : unseen) llmguard::print_report(slice->title, report);
    if (unseen.size() > 1) {
      llmguard::print_report("Every slice no rule was written from, together",
                             llmguard::evaluate(all_unseen, "unseen"));
    }
    llmguard::print_report("Corpus (the rules were written from these)", corpus);
    if (show_misses) {
      fmt::print("\n## Misses\n\n");
      for (const auto& [slice, report] : unseen) {
        for (const auto& m : report.misses) fmt::print("- {}\n", m);
      }
      for (const auto& m : corpus.misses) fmt::print("- {}\n", m);
    }
    const Report* held_back = unseen.empty() ? nullptr : &unseen.front().second;
    const double heldback_score = held_back && held_back->total.cases
                                      ? static_cast<double>(held_back->total.category) / held_back->total.cases
                                      : 0;
    if (heldback_score < min_heldback) {
      fmt::print(stderr, "held-back accuracy {:.3f} is below {:.3f}\n", heldback_score, min_heldback);
      return 1;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "corpus_report: {}\n", e.what());
    return 2;
  }
  return 0;
}
