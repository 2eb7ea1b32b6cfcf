// A whole chat request written in OpenAI's chat format, as `llmguard chat
// --request FILE` reads it:
//
//   {"messages": [{"role": "system" | "user" | "assistant" | "tool", ...}],
//    "tools": [{"type": "function", "function": {"name", "description", "parameters"}}],
//    "tool_choice": "auto" | "none" | "required" | {"type": "function", "function": {"name"}},
//    "max_tokens": N, "temperature": T, "top_p": P, "stop": "..." | [...],
//    "response_format": {...}, "caller_tag": "...", "group": "...",
//    "model": "...", "stream": false}
//
// "model" is accepted (requests are often copied from real ones) and
// ignored: the configured chain chooses the model. Unknown members are
// errors, as in configuration files: a typo must not go unnoticed.
#ifndef LLMGUARD_SRC_REQUEST_JSON_H_
#define LLMGUARD_SRC_REQUEST_JSON_H_

#include <string>
#include <string_view>

#include "llmguard/error.h"
#include "llmguard/types.h"

namespace llmguard::internal {

struct ParsedRequest {
  ChatRequest request;
  bool stream = false;  // the request's own "stream": true
  std::string group;    // "" when none was named
};

// A kBadRequest error names the member at fault ("messages[2].tool_calls[0].function.arguments").
Result<ParsedRequest> parse_openai_request(std::string_view json);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_REQUEST_JSON_H_
