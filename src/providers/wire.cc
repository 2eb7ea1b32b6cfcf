#include "providers/wire.h"

#include <cstdlib>

#include "classify.h"
#include "text.h"

namespace llmguard::internal {

using simdjson::dom::element;

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kSystem:
      return "system";
    case Role::kUser:
      return "user";
    case Role::kAssistant:
      return "assistant";
    case Role::kTool:
      return "tool";
  }
  return "user";
}

std::string first_env(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const char* value = std::getenv(name);
    if (value && *value) return value;
  }
  return {};
}

bool read_text(element parent, std::string_view key, std::string& out) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS || v.is_null()) return true;
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return false;
  out.assign(s);
  return true;
}

std::optional<element> child_object(element parent, std::string_view key, bool& ok) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
  if (!v.is_object()) ok = false;
  return ok ? std::optional<element>(v) : std::nullopt;
}

std::optional<simdjson::dom::array> child_array(element parent, std::string_view key, bool& ok) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
  simdjson::dom::array a;
  if (v.get_array().get(a) != simdjson::SUCCESS) {
    ok = false;
    return std::nullopt;
  }
  return a;
}

std::string_view text_of(element parent, std::string_view key) {
  std::string_view s;
  if (parent[key].get_string().get(s) != simdjson::SUCCESS) return {};
  return s;
}

std::int64_t int_of(element parent, std::string_view key, std::int64_t fallback) {
  std::int64_t n = 0;
  if (parent[key].get_int64().get(n) != simdjson::SUCCESS) return fallback;
  return n;
}

FinishReason normalised_finish(std::string_view raw, bool has_tool_calls) {
  if (has_tool_calls) return FinishReason::kToolCalls;
  struct Name {
    std::string_view raw;
    FinishReason reason;
  };
  // OpenAI, Anthropic, Gemini, Bedrock Converse, and what compatible servers send.
  static constexpr Name kNames[] = {
      {"stop", FinishReason::kStop},
      {"end_turn", FinishReason::kStop},
      {"stop_sequence", FinishReason::kStop},
      {"eos", FinishReason::kStop},
      {"length", FinishReason::kLength},
      {"max_tokens", FinishReason::kLength},
      {"model_length", FinishReason::kLength},
      {"model_context_window_exceeded", FinishReason::kLength},
      {"tool_calls", FinishReason::kToolCalls},
      {"tool_use", FinishReason::kToolCalls},
      {"function_call", FinishReason::kToolCalls},
      {"content_filter", FinishReason::kContentFilter},
      {"content_filtered", FinishReason::kContentFilter},
      {"guardrail_intervened", FinishReason::kContentFilter},
      {"refusal", FinishReason::kContentFilter},
      {"safety", FinishReason::kContentFilter},
      {"recitation", FinishReason::kContentFilter},
      {"prohibited_content", FinishReason::kContentFilter},
      {"blocklist", FinishReason::kContentFilter},
      {"spii", FinishReason::kContentFilter},
      {"image_safety", FinishReason::kContentFilter},
  };
  for (const Name& n : kNames) {
    if (iequals(raw, n.raw)) return n.reason;
  }
  return FinishReason::kOther;
}

Error classified(int status, const Headers& headers, std::string_view body) {
  Error e = classify_response(status, headers, body);
  e.hint = hint_for(e);
  return e;
}

}  // namespace llmguard::internal
