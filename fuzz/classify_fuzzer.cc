// libFuzzer target: arbitrary bytes through every parser that reads what a
// provider or proxy sends. Any crash, sanitizer report, hang or runaway
// allocation is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "classify.h"
#include "codec.h"
#include "providers/wire_api.h"
#include "sse.h"
#include "stream.h"
#include "usage_check.h"
#include "usage_json.h"
#include "user_rules.h"

using namespace llmguard;
using namespace llmguard::internal;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // First two bytes pick the status and the mode; the rest is the body.
  const int status = 100 + (data[0] | (data[1] << 8)) % 500;
  const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  const Headers headers = {{"retry-after", std::string(body.substr(0, 32))},
                           {"x-ratelimit-remaining-requests", "0"},
                           {"x-ratelimit-reset-requests", std::string(body.substr(0, 16))},
                           {"anthropic-ratelimit-tokens-remaining", "0"},
                           {"anthropic-ratelimit-tokens-reset", std::string(body.substr(0, 40))}};
  const auto now = std::chrono::system_clock::time_point(std::chrono::hours(480000));

  // Rules of a caller's, reading the body by pointer, a header and the error's words.
  static const UserRules rules = [] {
    auto compiled = UserRules::compile({
        {.id = "pointer", .category = ErrorCategory::kAuth, .words = {"key"}, .json_pointer = "/error/0/code"},
        {.id = "header", .category = ErrorCategory::kPermission, .words = {"deny"}, .header = "retry-after"},
        {.id = "words", .category = ErrorCategory::kQuotaExhausted, .words = {"allowance"}, .delay_field = "/wait"},
        {.id = "status", .category = ErrorCategory::kRateLimit, .status = 509, .delay_field = "/a/b"},
    });
    return std::move(*compiled);
  }();
  std::string evidence;
  Error e = classify_exchange(status, headers, body, (data[0] & 1) != 0, now, &evidence,
                              (data[1] & 1) != 0 ? &rules : nullptr);
  (void)hint_for(e);
  (void)redact_secrets(body);
  (void)parse_go_duration(body.substr(0, 64));

  (void)quote_out_of_range_numbers(body);
  for (Provider p : {Provider::kOpenAI, Provider::kAnthropic}) {
    ReportedUsage reported;
    auto parsed = parse_response_body(p, 200, headers, std::string(body), &reported);
    (void)checked_usage(reported, static_cast<std::int64_t>(size), -1);
    auto decoder = wire_api(p).stream_decoder();
    // In pieces, as a transport delivers them: an event spans feeds.
    const std::size_t piece = 1 + data[0] % 61;
    for (std::size_t at = 0; at < body.size(); at += piece) {
      if (decoder->feed(body.substr(at, piece), nullptr, 200, headers)) break;
    }
    (void)decoder->finish(200, &reported);
    (void)checked_usage(reported, 0, 0);
  }
  return 0;
}
