#include "llmguard/providers.h"

#include <string>

namespace llmguard {
namespace {

struct Well {
  std::string_view prefix;
  Price price;
};

// USD per million tokens as published by OpenAI (platform pricing page) and
// Anthropic (docs "Pricing": base input, 5-minute cache write, cache hit,
// output). Checked 2026-11; a target's own `price` overrides these.
constexpr Well kWellKnown[] = {
    {"gpt-4o-mini", {0.15, 0.60, 0.075, std::nullopt}},
    {"gpt-4o", {2.50, 10.00, 1.25, std::nullopt}},
    {"gpt-4.1-nano", {0.10, 0.40, 0.025, std::nullopt}},
    {"gpt-4.1-mini", {0.40, 1.60, 0.10, std::nullopt}},
    {"gpt-4.1", {2.00, 8.00, 0.50, std::nullopt}},
    {"gpt-5-nano", {0.05, 0.40, 0.005, std::nullopt}},
    {"gpt-5-mini", {0.25, 2.00, 0.025, std::nullopt}},
    {"gpt-5", {1.25, 10.00, 0.125, std::nullopt}},
    {"o3-mini", {1.10, 4.40, 0.55, std::nullopt}},
    {"o4-mini", {1.10, 4.40, 0.275, std::nullopt}},
    {"o3", {2.00, 8.00, 0.50, std::nullopt}},
    {"claude-opus-4-1", {15.00, 75.00, 1.50, 18.75}},
    {"claude-opus-4-0", {15.00, 75.00, 1.50, 18.75}},
    {"claude-opus-4-5", {5.00, 25.00, 0.50, 6.25}},
    {"claude-opus-4-6", {5.00, 25.00, 0.50, 6.25}},
    {"claude-opus-4-7", {5.00, 25.00, 0.50, 6.25}},
    {"claude-opus-4-8", {5.00, 25.00, 0.50, 6.25}},
    {"claude-sonnet-4", {3.00, 15.00, 0.30, 3.75}},
    {"claude-3-7-sonnet", {3.00, 15.00, 0.30, 3.75}},
    {"claude-3-5-sonnet", {3.00, 15.00, 0.30, 3.75}},
    {"claude-haiku-4-5", {1.00, 5.00, 0.10, 1.25}},
    {"claude-3-5-haiku", {0.80, 4.00, 0.08, 1.00}},
    {"claude-3-haiku", {0.25, 1.25, 0.03, 0.30}},
    {"claude-3-opus", {15.00, 75.00, 1.50, 18.75}},
    {"claude-opus-4", {15.00, 75.00, 1.50, 18.75}},  // claude-opus-4-20250514
};

}  // namespace

std::optional<ProviderPreset> provider_preset(std::string_view name) noexcept {
  struct Entry {
    std::string_view name;
    ProviderPreset preset;
  };
  static constexpr Entry kPresets[] = {
      {"openai", {Provider::kOpenAI, "https://api.openai.com/v1", "OPENAI_API_KEY"}},
      {"anthropic", {Provider::kAnthropic, "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"}},
      {"azure", {Provider::kAzure, "", "AZURE_OPENAI_API_KEY"}},
      {"gemini", {Provider::kGemini, "https://generativelanguage.googleapis.com/v1beta", "GEMINI_API_KEY"}},
      {"vertex", {Provider::kVertex, "", ""}},
      {"bedrock", {Provider::kBedrock, "", ""}},
      {"groq", {Provider::kOpenAI, "https://api.groq.com/openai/v1", "GROQ_API_KEY"}},
      {"mistral", {Provider::kOpenAI, "https://api.mistral.ai/v1", "MISTRAL_API_KEY"}},
      {"deepseek", {Provider::kOpenAI, "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"}},
      {"together", {Provider::kOpenAI, "https://api.together.xyz/v1", "TOGETHER_API_KEY"}},
      {"fireworks", {Provider::kOpenAI, "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"}},
      {"openrouter", {Provider::kOpenAI, "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"}},
      {"xai", {Provider::kOpenAI, "https://api.x.ai/v1", "XAI_API_KEY"}},
      {"ollama", {Provider::kOpenAI, "http://localhost:11434/v1", "OLLAMA_API_KEY"}},
      {"lmstudio", {Provider::kOpenAI, "http://localhost:1234/v1", "LMSTUDIO_API_KEY"}},
      {"llamacpp", {Provider::kOpenAI, "http://localhost:8080/v1", "LLAMACPP_API_KEY"}},
      {"vllm", {Provider::kOpenAI, "http://localhost:8000/v1", "VLLM_API_KEY"}},
      {"litellm", {Provider::kOpenAI, "http://localhost:4000/v1", "LITELLM_API_KEY"}},
  };
  for (const Entry& e : kPresets) {
    if (e.name == name) return e.preset;
  }
  return std::nullopt;
}

std::optional<Price> well_known_price(std::string_view model) {
  // Longest matching prefix: "gpt-4o-mini-2024-07-18" is gpt-4o-mini, not gpt-4o.
  const Well* best = nullptr;
  for (const Well& w : kWellKnown) {
    if (model.starts_with(w.prefix) && (!best || w.prefix.size() > best->prefix.size())) best = &w;
  }
  if (!best) return std::nullopt;
  return best->price;
}

bool apply_preset(Target& target, std::string_view service) {
  const std::optional<ProviderPreset> preset = provider_preset(service);
  if (!preset) return false;
  target.provider = preset->provider;
  // A service that speaks OpenAI's API under its own root gets that root and
  // its own key variable, so it is never sent OPENAI_API_KEY; openai and the
  // others keep their providers' defaults (and their *_BASE_URL variables).
  if (preset->provider == Provider::kOpenAI && !preset->base_url.empty() && preset->api_key_env != "OPENAI_API_KEY") {
    if (target.base_url.empty()) target.base_url = std::string(preset->base_url);
    if (target.api_key.empty() && target.api_key_env.empty()) target.api_key_env = std::string(preset->api_key_env);
  }
  return true;
}

}  // namespace llmguard
