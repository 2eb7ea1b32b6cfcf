// Pieces every wire API uses: readers over simdjson's DOM with one rule for
// absent, null and mistyped fields, and the errors a reply reader returns.
#ifndef LLMGUARD_SRC_PROVIDERS_WIRE_H_
#define LLMGUARD_SRC_PROVIDERS_WIRE_H_

#include <simdjson.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "llmguard/error.h"
#include "llmguard/options.h"
#include "llmguard/runtime.h"
#include "llmguard/types.h"

namespace llmguard::internal {

std::string_view role_name(Role role);

// The value of the first of `names` set to a non-empty value in the
// environment, or "".
std::string first_env(std::initializer_list<const char*> names);

// Whole-body readers. The DOM front end validates the whole document
// (on-demand in simdjson 3.0 accepts a body cut before its final brace).
// Absent and null fields read as empty; a present field of the wrong type
// returns false, which makes the body malformed.
bool read_text(simdjson::dom::element parent, std::string_view key, std::string& out);
// The object at `key`, or nullopt when absent or null (`ok` cleared when it
// is another type).
std::optional<simdjson::dom::element> child_object(simdjson::dom::element parent, std::string_view key, bool& ok);
std::optional<simdjson::dom::array> child_array(simdjson::dom::element parent, std::string_view key, bool& ok);

// Lenient readers for stream events, where a mistyped field reads as absent.
std::string_view text_of(simdjson::dom::element parent, std::string_view key);
std::int64_t int_of(simdjson::dom::element parent, std::string_view key, std::int64_t fallback = 0);

// The normalised reason for a provider's verbatim finish reason, whichever
// API's vocabulary it is in; a reply with tool calls is kToolCalls whatever
// the provider said (Gemini says STOP, OpenAI "stop" for a forced function).
FinishReason normalised_finish(std::string_view raw, bool has_tool_calls);

// An error reply's body classified, with the hint for its category.
Error classified(int status, const Headers& headers, std::string_view body);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_PROVIDERS_WIRE_H_
