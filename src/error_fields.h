// What an error response says, read from its structure before its prose:
// the provider's code, type and message after unwrapping envelopes and
// proxies, and the machine-readable details APIs attach (google.rpc
// ErrorInfo / QuotaFailure / RetryInfo, AWS error types, RFC 9457 problem
// details, the numeric codes of regional APIs, safety verdicts of 200
// replies). The classifier's rules read these fields, never the raw body.
#ifndef LLMGUARD_SRC_ERROR_FIELDS_H_
#define LLMGUARD_SRC_ERROR_FIELDS_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "llmguard/runtime.h"

namespace llmguard::internal {

struct ErrorFields {
  std::string code, type, message;  // the provider's own, verbatim
  // Structured words that are neither code nor message: ErrorInfo reasons,
  // quota ids and metrics, an AWS error type the body does not repeat.
  std::string details;
  int stated_status = 0;                           // an HTTP status the error states itself (proxies, google.rpc code)
  bool found = false;                              // an error object or message was recognised
  bool json = false;                               // the body parsed as JSON
  bool safety_block = false;                       // a 200 reply refused on safety grounds (Gemini, Vertex)
  bool unwrapped = false;                          // an upstream error a proxy carried as text
  bool problem_details = false;                    // RFC 9457 application/problem+json
  std::optional<std::chrono::milliseconds> delay;  // RetryInfo.retryDelay, problem+json retry_after
};

ErrorFields read_error_fields(const Headers& headers, std::string_view body);

bool looks_like_html(std::string_view body);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_ERROR_FIELDS_H_
