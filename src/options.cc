#include "llmguard/options.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "providers/wire_api.h"

namespace llmguard {

bool is_reasoning_model(std::string_view model) noexcept {
  std::string m(model.substr(0, 256));
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // The family name, wherever a provider prefix ("openai/", "accounts/...")
  // puts it.
  const std::size_t slash = m.rfind('/');
  const std::string_view name =
      slash == std::string::npos ? std::string_view(m) : std::string_view(m).substr(slash + 1);
  static constexpr std::array<std::string_view, 4> kPrefixes = {"o1", "o3", "o4", "gpt-5"};
  for (std::string_view p : kPrefixes) {
    if (name.starts_with(p) && (name.size() == p.size() || name[p.size()] == '-' || name[p.size()] == '.')) return true;
  }
  static constexpr std::array<std::string_view, 5> kWords = {"reasoner", "thinking", "-r1", "qwq", "magistral"};
  for (std::string_view w : kWords) {
    if (name.find(w) != std::string_view::npos) return true;
  }
  return name.starts_with("r1");
}

std::string_view to_string(Provider provider) noexcept { return internal::wire_api(provider).name(); }

std::optional<Provider> parse_provider(std::string_view name) noexcept {
  for (Provider p : internal::all_providers()) {
    if (internal::wire_api(p).name() == name) return p;
  }
  return std::nullopt;
}

std::string_view to_string(FinishReason reason) noexcept {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kToolCalls:
      return "tool_calls";
    case FinishReason::kContentFilter:
      return "content_filter";
    case FinishReason::kOther:
      return "other";
  }
  return "other";
}

std::string_view to_string(Event::Kind kind) noexcept {
  switch (kind) {
    case Event::Kind::kAttemptStarted:
      return "attempt_started";
    case Event::Kind::kAttemptFailed:
      return "attempt_failed";
    case Event::Kind::kRetryScheduled:
      return "retry_scheduled";
    case Event::Kind::kRetryBudgetExhausted:
      return "retry_budget_exhausted";
    case Event::Kind::kFallback:
      return "fallback";
    case Event::Kind::kTargetSkipped:
      return "target_skipped";
    case Event::Kind::kBreakerOpened:
      return "breaker_opened";
    case Event::Kind::kBreakerClosed:
      return "breaker_closed";
    case Event::Kind::kBudgetOverrun:
      return "budget_overrun";
    case Event::Kind::kSharedStateUnavailable:
      return "shared_state_unavailable";
    case Event::Kind::kSharedStateRestored:
      return "shared_state_restored";
  }
  return "unknown";
}

}  // namespace llmguard
