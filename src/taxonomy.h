// The error taxonomy's meaning, written once: each category's stable name,
// whether an attempt can produce it, what the engine does after it by
// default, and what it does to the target's breaker. Names, policy, health
// and rule validation all read this table; taxonomy_test holds it against
// DESIGN.md's.
#ifndef LLMGUARD_SRC_TAXONOMY_H_
#define LLMGUARD_SRC_TAXONOMY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llmguard/error.h"

namespace llmguard::internal {

enum class DefaultAction : std::uint8_t {
  kRetry,       // retry this target (backoff or the provider's delay), then the next
  kRetryOnce,   // as kRetry, one retry at most: a blip or a bug
  kNextTarget,  // go to the next target at once
  kFail,        // end the call
};

enum class BreakerEffect : std::uint8_t {
  kHealthy,        // the target answered sensibly: its failure count resets
  kCountsFailure,  // counts toward opening the breaker
  kAuthCooldown,   // takes the target out for BreakerPolicy::auth_cooldown
  kQuotaCooldown,  // ... quota_cooldown
  kModelCooldown,  // ... model_not_found_cooldown
  kNone,           // decided before any request: the breaker does not hear of it
};

struct CategoryInfo {
  ErrorCategory category;
  std::string_view name;
  bool from_attempt;  // an upstream attempt can end with it (so a CategoryRule may override it)
  DefaultAction action;
  BreakerEffect breaker;
};

inline constexpr std::array<CategoryInfo, 15> kTaxonomy = {{
    {ErrorCategory::kAuth, "auth", true, DefaultAction::kNextTarget, BreakerEffect::kAuthCooldown},
    {ErrorCategory::kPermission, "permission", true, DefaultAction::kNextTarget, BreakerEffect::kHealthy},
    {ErrorCategory::kModelNotFound, "model_not_found", true, DefaultAction::kNextTarget, BreakerEffect::kModelCooldown},
    {ErrorCategory::kRateLimit, "rate_limit", true, DefaultAction::kRetry, BreakerEffect::kHealthy},
    {ErrorCategory::kQuotaExhausted, "quota_exhausted", true, DefaultAction::kNextTarget,
     BreakerEffect::kQuotaCooldown},
    {ErrorCategory::kContextOverflow, "context_overflow", true, DefaultAction::kNextTarget, BreakerEffect::kHealthy},
    {ErrorCategory::kContentFilter, "content_filter", true, DefaultAction::kFail, BreakerEffect::kHealthy},
    {ErrorCategory::kBadRequest, "bad_request", true, DefaultAction::kFail, BreakerEffect::kHealthy},
    {ErrorCategory::kTransient, "transient", true, DefaultAction::kRetry, BreakerEffect::kCountsFailure},
    {ErrorCategory::kTimeout, "timeout", true, DefaultAction::kRetry, BreakerEffect::kCountsFailure},
    {ErrorCategory::kConnection, "connection", true, DefaultAction::kRetry, BreakerEffect::kCountsFailure},
    {ErrorCategory::kCancelled, "cancelled", false, DefaultAction::kFail, BreakerEffect::kNone},
    {ErrorCategory::kBudgetExceeded, "budget_exceeded", false, DefaultAction::kNextTarget, BreakerEffect::kNone},
    {ErrorCategory::kCircuitOpen, "circuit_open", false, DefaultAction::kNextTarget, BreakerEffect::kNone},
    {ErrorCategory::kUnknown, "unknown", true, DefaultAction::kRetryOnce, BreakerEffect::kCountsFailure},
}};

// Every category has its row, at its enum value.
constexpr bool taxonomy_in_enum_order() {
  for (std::size_t i = 0; i < kTaxonomy.size(); ++i) {
    if (static_cast<std::size_t>(kTaxonomy[i].category) != i) return false;
  }
  return static_cast<std::size_t>(ErrorCategory::kUnknown) + 1 == kTaxonomy.size();
}
static_assert(taxonomy_in_enum_order(), "kTaxonomy needs one row per ErrorCategory, in enum order");

constexpr const CategoryInfo& category_info(ErrorCategory category) {
  const auto index = static_cast<std::size_t>(category);
  return kTaxonomy[index < kTaxonomy.size() ? index : kTaxonomy.size() - 1];
}

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_TAXONOMY_H_
