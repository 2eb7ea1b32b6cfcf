// One Usage out of the shapes providers and gateways report it in, for
// replies in the OpenAI format (whole bodies and stream chunks alike).
#ifndef LLMGUARD_SRC_USAGE_JSON_H_
#define LLMGUARD_SRC_USAGE_JSON_H_

#include <simdjson.h>

#include "llmguard/types.h"

namespace llmguard::internal {

// Reads `root`'s "usage" (OpenAI; OpenRouter's cache_write_tokens;
// DeepSeek's prompt_cache_hit_tokens; LiteLLM's Anthropic-style cache
// counts) or Gemini's "usageMetadata". Fields of an unexpected type count as
// absent: a reply is never lost over its usage. Returns false when neither
// is present, leaving `out` untouched.
bool read_openai_style_usage(simdjson::dom::element root, Usage& out);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_USAGE_JSON_H_
