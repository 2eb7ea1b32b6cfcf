// Usage out of the shapes providers and gateways report it in (whole bodies
// and stream events alike), read faithfully into a ReportedUsage; and a JSON
// parse that survives out-of-range numbers, so that a billed reply is not lost
// over a nonsense count.
#ifndef LLMGUARD_SRC_USAGE_JSON_H_
#define LLMGUARD_SRC_USAGE_JSON_H_

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "usage_check.h"

namespace llmguard::internal {

// One count: null is absent; an int64 is kept as sent, negative included; a
// finite double is rounded away from zero (12.5 -> 13, -0.5 -> -1); anything
// else (uint64 above int64, strings — the out-of-range stand-in of
// `parse_allowing_out_of_range_numbers` included — bools, objects) is invalid.
ReportedCount read_reported_count(simdjson::dom::element value);

// Reads `root`'s "usage" (OpenAI; OpenRouter's cache_write_tokens;
// DeepSeek's prompt_cache_hit_tokens; LiteLLM's Anthropic-style cache
// counts) or Gemini's "usageMetadata". Returns false when neither is an
// object (absent, null, or another type: a reply is never lost over its
// usage), leaving `out` untouched; else replaces `out`, with `reported` set.
bool read_openai_style_usage(simdjson::dom::element root, ReportedUsage& out);
// The same for one member of an object being walked: reads `value` when
// `key` is "usage" or "usageMetadata" and it is an object.
bool read_usage_member(std::string_view key, simdjson::dom::element value, ReportedUsage& out);

// Reads Anthropic's usage object (message, message_start and message_delta
// alike). Overwrites the parts present in `usage`, so that a later event's counts
// replace an earlier one's and absent ones keep theirs.
void read_anthropic_usage(simdjson::dom::object usage, AnthropicUsageParts& parts);

// Reads Bedrock Converse's usage object (whole replies and the stream's
// metadata event) into `out`, replacing it, with `reported` set. inputTokens
// leaves out cacheReadInputTokens and cacheWriteInputTokens (as Anthropic's
// input_tokens does); the common prompt count includes them.
void read_bedrock_usage(simdjson::dom::object usage, ReportedUsage& out);

// parser.parse(data, size) (`data` padded by SIMDJSON_PADDING unless
// `realloc_if_needed`), except that a document refused for a number
// simdjson cannot hold (1e999, a 30-digit integer) is parsed once more from
// a copy where every such literal outside strings is quoted ("1e999"), which
// the count readers see as invalid. Structure is untouched, so a truncated
// document is refused as before.
simdjson::error_code parse_allowing_out_of_range_numbers(simdjson::dom::parser& parser, const char* data,
                                                         std::size_t size, bool realloc_if_needed,
                                                         simdjson::dom::element& root);

// The copy that function parses: `json` with every number literal that is
// well-formed but outside double and 64-bit integer range quoted. Exposed
// for tests.
std::string quote_out_of_range_numbers(std::string_view json);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_USAGE_JSON_H_
