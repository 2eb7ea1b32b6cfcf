// Known services and models: where each service's API lives and which key
// variable it reads, and the published prices of well-known models.
#ifndef LLMGUARD_PROVIDERS_H_
#define LLMGUARD_PROVIDERS_H_

#include <optional>
#include <string_view>

#include "llmguard/options.h"

namespace llmguard {

// Where a service that speaks one of the APIs above lives: "gemini", "groq",
// "mistral", "deepseek", "together", "fireworks", "openrouter", "xai",
// "ollama", "lmstudio", "llamacpp", "vllm", "litellm" (and "openai",
// "anthropic", "azure"). Config files accept these names as "provider"; in
// code, copy the fields into a Target. Each has its own key variable, so a
// local server is never sent OPENAI_API_KEY.
struct ProviderPreset {
  Provider provider = Provider::kOpenAI;
  std::string_view base_url;     // "" for azure (per resource)
  std::string_view api_key_env;  // e.g. "GROQ_API_KEY"
};
std::optional<ProviderPreset> provider_preset(std::string_view name) noexcept;

// Fills what `target` leaves empty from the preset of `service`: its wire
// API, its API root (for services with a public one) and its own key
// variable. Returns false, changing nothing, when `service` names no preset.
// Config files' "provider" goes through this.
bool apply_preset(Target& target, std::string_view service);

// The price of a well-known model by name (dated and "-latest" variants
// included), from the providers' published tables; nullopt when unknown.
std::optional<Price> well_known_price(std::string_view model);

}  // namespace llmguard

#endif  // LLMGUARD_PROVIDERS_H_
