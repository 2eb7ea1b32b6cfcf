// ClassifierRules of the caller's, checked and compiled once per client,
// matched before the built-in rules.
#ifndef LLMGUARD_SRC_USER_RULES_H_
#define LLMGUARD_SRC_USER_RULES_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error_fields.h"
#include "llmguard/options.h"

namespace llmguard::internal {

class UserRules {
 public:
  // Refuses a rule without an id or conditions, with a category no attempt
  // ends with, or with a pointer that is no RFC 6901 path.
  static Result<UserRules> compile(std::vector<ClassifierRule> rules);

  struct Match {
    const ClassifierRule* rule = nullptr;
    std::string evidence;
    std::optional<std::chrono::milliseconds> delay;  // from the rule's delay_field
  };
  // The first rule that holds for this response, if any.
  std::optional<Match> match(int http_status, const Headers& headers, std::string_view body,
                             const ErrorFields& fields) const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Compiled {
    ClassifierRule rule;
    std::vector<std::string> words;  // normalised, each with its leading space
  };
  std::vector<Compiled> rules_;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_USER_RULES_H_
