// The classifier's rules: which category an error is, from its fields.
// Each rule has a stable id, so `llmguard classify --explain` and
// Error::rule can say which rule decided and on what evidence. Rules read
// words over normalised text (lower case, punctuation and camelCase split
// into single spaces, URLs dropped), matched at word starts so that a stem
// ("token") covers its plurals and "unlimited" is no "limit".
#ifndef LLMGUARD_SRC_CLASSIFY_RULES_H_
#define LLMGUARD_SRC_CLASSIFY_RULES_H_

#include <string>
#include <string_view>

#include "error_fields.h"
#include "llmguard/error.h"

namespace llmguard::internal {

struct Verdict {
  ErrorCategory category = ErrorCategory::kUnknown;
  std::string_view rule;        // the deciding rule's id
  std::string evidence;         // what it matched (words, a status), when asked for
  bool mentions_delay = false;  // the text holds words a delay follows
};

Verdict categorize(int http_status, const ErrorFields& fields, bool html, bool want_evidence = false);

// " words separated by single spaces ": lower case, camelCase and
// snake_case split, punctuation dropped, URLs removed. Bytes above 0x7f
// (other scripts) are kept as they are.
void normalise_words(std::string_view text, std::string& out);
// As normalise_words, appended to `out` (which keeps its leading space).
void append_normalised(std::string_view text, std::string& out);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_CLASSIFY_RULES_H_
