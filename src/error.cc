#include "llmguard/error.h"

#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include "llmguard/usage.h"
#include "taxonomy.h"

namespace llmguard {

static_assert(std::tuple_size_v<decltype(UsageCounters::failures_by_category)> == internal::kTaxonomy.size(),
              "UsageCounters counts failures per category");

std::string_view to_string(ErrorCategory category) noexcept { return internal::category_info(category).name; }

std::string_view to_string(NextStep step) noexcept {
  switch (step) {
    case NextStep::kRetry:
      return "retry";
    case NextStep::kNextTarget:
      return "next_target";
    case NextStep::kFail:
      return "fail";
  }
  return "fail";
}

std::string_view to_string(StepReason reason) noexcept {
  switch (reason) {
    case StepReason::kCategoryDefault:
      return "category_default";
    case StepReason::kRule:
      return "rule";
    case StepReason::kAttemptsExhausted:
      return "attempts_exhausted";
    case StepReason::kDelayAboveCap:
      return "delay_above_cap";
    case StepReason::kProviderSaidNo:
      return "provider_said_no";
    case StepReason::kProviderSaidRetry:
      return "provider_said_retry";
    case StepReason::kPastDeadline:
      return "past_deadline";
    case StepReason::kRetryBudget:
      return "retry_budget";
    case StepReason::kSilentRoute:
      return "silent_route";
    case StepReason::kBrokenStream:
      return "broken_stream";
    case StepReason::kStreamDelivered:
      return "stream_delivered";
    case StepReason::kShrunk:
      return "shrunk";
    case StepReason::kCredentialRefreshed:
      return "credential_refreshed";
  }
  return "category_default";
}

std::optional<ErrorCategory> parse_error_category(std::string_view name) noexcept {
  for (const internal::CategoryInfo& info : internal::kTaxonomy) {
    if (info.name == name) return info.category;
  }
  return std::nullopt;
}

bool Error::retryable() const noexcept {
  const internal::DefaultAction action = internal::category_info(category).action;
  return action == internal::DefaultAction::kRetry || action == internal::DefaultAction::kRetryOnce;
}

Error make_error(ErrorCategory category, std::string message) {
  Error e;
  e.category = category;
  e.message = std::move(message);
  return e;
}

std::string describe(const Error& error) {
  std::string out(to_string(error.category));
  if (error.http_status != 0 || !error.provider_code.empty()) {
    out += " (";
    if (error.http_status != 0) out += fmt::format("HTTP {}", error.http_status);
    if (error.http_status != 0 && !error.provider_code.empty()) out += ", ";
    out += error.provider_code;
    out += ')';
  }
  if (!error.target.empty()) out += fmt::format(" from {}", error.target);
  if (!error.message.empty()) out += fmt::format(": {}", error.message);
  if (error.retry_after) out += fmt::format(" [retry after {} ms]", error.retry_after->count());
  return out;
}

namespace internal {
void die_bad_result_access(bool wanted_value) {
  std::fputs(
      wanted_value ? "llmguard: Result::value() called on an error\n" : "llmguard: Result::error() called on a value\n",
      stderr);
  std::abort();
}
}  // namespace internal

}  // namespace llmguard
