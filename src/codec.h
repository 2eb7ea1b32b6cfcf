// Request bodies and response parsing for each provider's wire format.
#ifndef LLMGUARD_SRC_CODEC_H_
#define LLMGUARD_SRC_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "llmguard/options.h"
#include "llmguard/types.h"
#include "usage_check.h"

namespace llmguard::internal {

// Serialises `request` for `provider` with `model`. Invalid caller input
// (bad UTF-8, malformed JSON in a JSON-typed field) is a kBadRequest error
// naming the field; nothing is sent.
// With `stream`, asks for SSE and (OpenAI, Azure) for usage in the stream.
// `default_max_tokens` is sent when the request sets no max_tokens.
Result<std::string> build_request_body(Provider provider, const ChatRequest& request, std::string_view model,
                                       bool stream = false,
                                       std::optional<std::int64_t> default_max_tokens = std::nullopt);

// Parses a 2xx body. `body` is moved in so that simdjson can read it in
// place: capacity is grown for its padding, avoiding a copy. A body that is
// not the expected JSON (truncated, HTML, empty) is a kTransient error; a 2xx
// carrying an error object is classified like any error response. Usage
// never makes a reply malformed: wrong types, out-of-range numbers (1e999)
// and a missing usage are all recorded as such.
//
// `reported` (when given) receives the usage exactly as the reply carried it,
// for the caller to turn into the accounted Usage with checked_usage() and
// the request's prompt estimate. The returned response's `usage` is already
// checked_usage(reported, 0, estimate_tokens(reply_bytes(response))): safe to
// account, but with no prompt estimate, which only the caller can make.
Result<ChatResponse> parse_response_body(Provider provider, int http_status, const Headers& headers, std::string body,
                                         ReportedUsage* reported = nullptr);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_CODEC_H_
