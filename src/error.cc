#include "llmguard/error.h"

#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace llmguard {
namespace {

constexpr std::array<std::string_view, 15> kCategoryNames = {
    "auth",      "permission",   "model_not_found", "rate_limit",      "quota_exhausted",
    "context_overflow", "content_filter", "bad_request", "transient", "timeout",
    "connection", "cancelled",   "budget_exceeded", "circuit_open",    "unknown",
};

}  // namespace

std::string_view to_string(ErrorCategory category) noexcept {
  auto index = static_cast<std::size_t>(category);
  return index < kCategoryNames.size() ? kCategoryNames[index] : "unknown";
}

std::optional<ErrorCategory> parse_error_category(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kCategoryNames.size(); ++i) {
    if (kCategoryNames[i] == name) return static_cast<ErrorCategory>(i);
  }
  return std::nullopt;
}

bool Error::retryable() const noexcept {
  switch (category) {
    case ErrorCategory::kRateLimit:
    case ErrorCategory::kTransient:
    case ErrorCategory::kTimeout:
    case ErrorCategory::kConnection:
    case ErrorCategory::kUnknown:
      return true;
    default:
      return false;
  }
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
  std::fputs(wanted_value ? "llmguard: Result::value() called on an error\n"
                          : "llmguard: Result::error() called on a value\n",
             stderr);
  std::abort();
}
}  // namespace internal

}  // namespace llmguard
