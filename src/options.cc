#include "llmguard/options.h"

namespace llmguard {

std::string_view to_string(Provider provider) noexcept {
  switch (provider) {
    case Provider::kOpenAI: return "openai";
    case Provider::kAzure: return "azure";
    case Provider::kAnthropic: return "anthropic";
  }
  return "openai";
}

std::optional<Provider> parse_provider(std::string_view name) noexcept {
  if (name == "openai") return Provider::kOpenAI;
  if (name == "azure") return Provider::kAzure;
  if (name == "anthropic") return Provider::kAnthropic;
  return std::nullopt;
}

std::string_view to_string(Event::Kind kind) noexcept {
  switch (kind) {
    case Event::Kind::kAttemptStarted: return "attempt_started";
    case Event::Kind::kAttemptFailed: return "attempt_failed";
    case Event::Kind::kRetryScheduled: return "retry_scheduled";
    case Event::Kind::kRetryBudgetExhausted: return "retry_budget_exhausted";
    case Event::Kind::kFallback: return "fallback";
    case Event::Kind::kTargetSkipped: return "target_skipped";
    case Event::Kind::kBreakerOpened: return "breaker_opened";
    case Event::Kind::kBreakerClosed: return "breaker_closed";
    case Event::Kind::kBudgetOverrun: return "budget_overrun";
  }
  return "unknown";
}

}  // namespace llmguard
