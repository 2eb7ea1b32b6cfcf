#include "usage_json.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace llmguard::internal {
namespace {

using simdjson::dom::element;

std::optional<std::int64_t> count(element parent, std::string_view key) {
  std::int64_t n = 0;
  if (parent[key].get_int64().get(n) != simdjson::SUCCESS || n < 0) return std::nullopt;
  return n;
}

std::optional<element> object_at(element parent, std::string_view key) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS || !v.is_object()) return std::nullopt;
  return v;
}

void read_openai_usage(element usage, Usage& u) {
  u.prompt_tokens = count(usage, "prompt_tokens").value_or(0);
  u.completion_tokens = count(usage, "completion_tokens").value_or(0);
  if (auto details = object_at(usage, "prompt_tokens_details")) {
    u.cached_tokens = count(*details, "cached_tokens").value_or(0);
    u.cache_write_tokens = count(*details, "cache_write_tokens").value_or(0);  // OpenRouter
  }
  if (u.cached_tokens == 0) {
    // DeepSeek reports cache hits beside the prompt count; LiteLLM passes
    // Anthropic's cache counts through at the top level.
    u.cached_tokens = count(usage, "prompt_cache_hit_tokens").value_or(count(usage, "cache_read_input_tokens").value_or(0));
  }
  if (u.cache_write_tokens == 0) u.cache_write_tokens = count(usage, "cache_creation_input_tokens").value_or(0);
  if (auto details = object_at(usage, "completion_tokens_details")) {
    u.reasoning_tokens = count(*details, "reasoning_tokens").value_or(0);
  }
  u.total_tokens = count(usage, "total_tokens").value_or(u.prompt_tokens + u.completion_tokens);
}

// Gemini: candidatesTokenCount leaves out the thinking tokens, which OpenAI's
// completion_tokens includes; cached content is part of the prompt count.
void read_gemini_usage(element meta, Usage& u) {
  const std::int64_t thoughts = count(meta, "thoughtsTokenCount").value_or(0);
  u.prompt_tokens = count(meta, "promptTokenCount").value_or(0);
  u.completion_tokens = count(meta, "candidatesTokenCount").value_or(0) + thoughts;
  u.cached_tokens = count(meta, "cachedContentTokenCount").value_or(0);
  u.reasoning_tokens = thoughts;
  u.total_tokens = count(meta, "totalTokenCount").value_or(u.prompt_tokens + u.completion_tokens);
}

}  // namespace

bool read_openai_style_usage(element root, Usage& out) {
  if (auto usage = object_at(root, "usage")) {
    Usage u;
    read_openai_usage(*usage, u);
    out = u;
    return true;
  }
  if (auto meta = object_at(root, "usageMetadata")) {
    Usage u;
    read_gemini_usage(*meta, u);
    out = u;
    return true;
  }
  return false;
}

}  // namespace llmguard::internal
