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

std::optional<std::int64_t> count_in(element v) {
  std::int64_t n = 0;
  if (v.get_int64().get(n) != simdjson::SUCCESS || n < 0) return std::nullopt;
  return n;
}

// One pass over the members: a keyed lookup per field rescanned them all.
void read_openai_usage(element usage, Usage& u) {
  simdjson::dom::object members;
  if (usage.get_object().get(members) != simdjson::SUCCESS) return;
  std::optional<std::int64_t> total, cache_hit, cache_read, cache_creation;
  for (simdjson::dom::key_value_pair m : members) {
    const std::string_view key = m.key;
    if (key == "prompt_tokens") {
      u.prompt_tokens = count_in(m.value).value_or(0);
    } else if (key == "completion_tokens") {
      u.completion_tokens = count_in(m.value).value_or(0);
    } else if (key == "total_tokens") {
      total = count_in(m.value);
    } else if (key == "prompt_tokens_details" && m.value.is_object()) {
      u.cached_tokens = count(m.value, "cached_tokens").value_or(0);
      u.cache_write_tokens = count(m.value, "cache_write_tokens").value_or(0);  // OpenRouter
    } else if (key == "completion_tokens_details" && m.value.is_object()) {
      u.reasoning_tokens = count(m.value, "reasoning_tokens").value_or(0);
    } else if (key == "prompt_cache_hit_tokens") {  // DeepSeek
      cache_hit = count_in(m.value);
    } else if (key == "cache_read_input_tokens") {  // Anthropic's counts, passed through by LiteLLM
      cache_read = count_in(m.value);
    } else if (key == "cache_creation_input_tokens") {
      cache_creation = count_in(m.value);
    }
  }
  if (u.cached_tokens == 0) u.cached_tokens = cache_hit.value_or(cache_read.value_or(0));
  if (u.cache_write_tokens == 0) u.cache_write_tokens = cache_creation.value_or(0);
  u.total_tokens = total.value_or(u.prompt_tokens + u.completion_tokens);
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
