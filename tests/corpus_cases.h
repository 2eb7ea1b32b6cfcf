// The real error responses of tests/corpus, as corpus_test and corpus_report
// read them. Each line of a .jsonl file is one response with where it was
// published; `also` names a second category where the taxonomy's wording
// fits two.
#ifndef LLMGUARD_TESTS_CORPUS_CASES_H_
#define LLMGUARD_TESTS_CORPUS_CASES_H_

#include <absl/time/time.h>
#include <simdjson.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "llmguard/runtime.h"
#include "text.h"

namespace llmguard::corpus {

struct Case {
  std::string id, provider, expected, also, body, source;
  int status = 0;
  Headers headers;
  bool stream = false;
  std::optional<double> retry_after_s;
};

inline std::string text_field(simdjson::dom::element e, const char* key) {
  std::string_view s;
  if (e[key].get_string().get(s) != simdjson::SUCCESS) return {};
  return std::string(s);
}

// Throws std::runtime_error naming the file and line of a malformed case.
inline std::vector<Case> load(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot read " + path);
  std::vector<Case> cases;
  simdjson::dom::parser parser;
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (line.empty()) continue;
    simdjson::dom::element e;
    std::int64_t status = 0;
    simdjson::dom::object headers;
    if (parser.parse(line).get(e) != simdjson::SUCCESS || e["status"].get_int64().get(status) != simdjson::SUCCESS ||
        e["headers"].get_object().get(headers) != simdjson::SUCCESS) {
      throw std::runtime_error(path + ":" + std::to_string(line_number) + ": not a corpus case");
    }
    Case c;
    c.id = text_field(e, "id");
    c.provider = text_field(e, "provider");
    c.expected = text_field(e, "expected");
    c.also = text_field(e, "also");
    c.body = text_field(e, "body");
    c.source = text_field(e, "source");
    c.status = static_cast<int>(status);
    bool stream = false;
    if (e["stream"].get_bool().get(stream) == simdjson::SUCCESS) c.stream = stream;
    for (auto [k, v] : headers) {
      std::string_view value;
      if (v.get_string().get(value) == simdjson::SUCCESS) c.headers.emplace_back(std::string(k), std::string(value));
    }
    double seconds = 0;
    if (e["retry_after_s"].get_double().get(seconds) == simdjson::SUCCESS) c.retry_after_s = seconds;
    cases.push_back(std::move(c));
  }
  return cases;
}

// Responses are judged at the moment they were sent (their Date header), so
// HTTP-date delays keep their meaning; without one, a fixed moment.
inline std::chrono::system_clock::time_point response_time(const Headers& headers) {
  if (const std::string* date = find_header(headers, "date")) {
    std::string value = *date;
    if (value.ends_with(" GMT")) value.replace(value.size() - 3, 3, "+0000");
    absl::Time t;
    std::string err;
    if (absl::ParseTime("%a, %d %b %Y %H:%M:%S %z", value, &t, &err)) return absl::ToChronoTime(t);
  }
  return std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 55));
}

// The slices no rule was written from, in the order they were gathered: each
// was set aside whole when it was collected, so its score measures how the
// rules carry over to responses they have not seen.
struct Slice {
  const char* file;
  const char* name;
  const char* title;
};
inline constexpr Slice kUnseenSlices[] = {
    {"heldback.jsonl", "held-back", "Held back (set aside from the first gathering)"},
    {"fresh.jsonl", "fresh", "Fresh (a second gathering, from sources the first did not use)"},
    {"fresh2.jsonl", "fresh-2", "Fresh 2 (a third gathering, from sources neither used)"},
};

// True when `category` is the case's label or its second one.
inline bool labelled(const Case& c, std::string_view category) {
  return category == c.expected || (!c.also.empty() && category == c.also);
}

}  // namespace llmguard::corpus

#endif  // LLMGUARD_TESTS_CORPUS_CASES_H_
