#include "user_rules.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cmath>

#include "classify_rules.h"
#include "taxonomy.h"

namespace llmguard::internal {
namespace {

Error invalid_rule(const ClassifierRule& rule, std::string_view why) {
  return make_error(ErrorCategory::kBadRequest,
                    fmt::format("classifier rule \"{}\": {}", rule.id.empty() ? "(no id)" : rule.id, why));
}

bool valid_pointer(std::string_view pointer) { return pointer.empty() || pointer.front() == '/'; }

// The text of the value at `pointer`: a string as it is, anything else as
// minified JSON.
std::optional<std::string> value_at(std::string_view body, std::string_view pointer) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root, value;
  if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS ||
      root.at_pointer(pointer).get(value) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) return std::string(text);
  return simdjson::minify(value);
}

}  // namespace

Result<UserRules> UserRules::compile(std::vector<ClassifierRule> rules) {
  UserRules out;
  for (ClassifierRule& rule : rules) {
    if (rule.id.empty()) return invalid_rule(rule, "needs an id");
    if (!category_info(rule.category).from_attempt) {
      return invalid_rule(rule, "its category must be one an upstream attempt can end with");
    }
    if (rule.status && (*rule.status < 100 || *rule.status > 599))
      return invalid_rule(rule, "status is no HTTP status");
    if (!rule.status && rule.words.empty()) return invalid_rule(rule, "needs a status or words to match");
    if (!valid_pointer(rule.json_pointer) || !valid_pointer(rule.delay_field)) {
      return invalid_rule(rule, "JSON pointers start with '/' (RFC 6901)");
    }
    if (!rule.json_pointer.empty() && !rule.header.empty()) {
      return invalid_rule(rule, "set json_pointer or header, not both");
    }
    Compiled c{std::move(rule), {}};
    for (const std::string& word : c.rule.words) {
      std::string normalised;
      normalise_words(word, normalised);
      if (normalised == " ") return invalid_rule(c.rule, "a word has no letters or digits");
      normalised.pop_back();  // a stem: matches at a word start, any ending
      c.words.push_back(std::move(normalised));
    }
    out.rules_.push_back(std::move(c));
  }
  return out;
}

std::optional<UserRules::Match> UserRules::match(int http_status, const Headers& headers, std::string_view body,
                                                 const ErrorFields& fields) const {
  std::string error_text;  // normalised once, when a rule reads it
  for (const Compiled& c : rules_) {
    const ClassifierRule& rule = c.rule;
    if (rule.status && *rule.status != http_status) continue;
    Match m{&rule, rule.status ? fmt::format("HTTP {}", http_status) : std::string(), std::nullopt};
    if (!c.words.empty()) {
      std::string text;
      if (!rule.json_pointer.empty()) {
        auto value = value_at(body, rule.json_pointer);
        if (!value) continue;
        normalise_words(*value, text);
      } else if (!rule.header.empty()) {
        const std::string* value = find_header(headers, rule.header);
        if (!value) continue;
        normalise_words(*value, text);
      } else {
        if (error_text.empty()) {
          for (const std::string* part : {&fields.code, &fields.type, &fields.details, &fields.message}) {
            append_normalised(*part, error_text);
          }
        }
        text = error_text;
      }
      const auto word = std::find_if(c.words.begin(), c.words.end(),
                                     [&text](const std::string& w) { return text.find(w) != std::string::npos; });
      if (word == c.words.end()) continue;
      m.evidence =
          fmt::format("\"{}\"{}{}", std::string_view(*word).substr(1), m.evidence.empty() ? "" : " at ", m.evidence);
    }
    if (!rule.delay_field.empty()) {
      if (auto value = value_at(body, rule.delay_field)) {
        char* end = nullptr;
        const double seconds = std::strtod(value->c_str(), &end);
        if (end != value->c_str() && std::isfinite(seconds) && seconds >= 0) {
          m.delay = std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(std::min(seconds, 1e9) * 1000)));
        }
      }
    }
    return m;
  }
  return std::nullopt;
}

}  // namespace llmguard::internal
