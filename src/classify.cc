#include "classify.h"

#include <absl/time/time.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "sse.h"
#include "text.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;

// What an error body says, after unwrapping envelopes and proxies.
struct ProviderFields {
  std::string code, type, message;
  int inner_status = 0;  // an HTTP status carried inside the body (proxies)
  bool found = false;    // an error object or message was recognised
  bool safety_block = false;  // Gemini promptFeedback.blockReason / finishReason SAFETY
  bool unwrapped = false;     // taken from an upstream error a proxy carried as text
};

std::string scalar_text(simdjson::dom::element e) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  std::int64_t i = 0;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return std::to_string(i);
  return {};
}

std::string member_text(simdjson::dom::element object, std::string_view key) {
  simdjson::dom::element v;
  if (object[key].get(v) != simdjson::SUCCESS) return {};
  return scalar_text(v);
}

constexpr int kMaxUnwrapDepth = 4;
constexpr std::size_t kMaxParsedBody = 8u << 20;

void read_fields(std::string_view body, ProviderFields& f, int depth);

// Proxies (LiteLLM, gemini-cli, company gateways) often put the upstream
// error's JSON inside their own message string. When the message holds a
// JSON object that is itself an error, the upstream error decides.
void unwrap_embedded(ProviderFields& f, int depth) {
  if (depth >= kMaxUnwrapDepth) return;
  const std::size_t open = f.message.find('{');
  const std::size_t close = f.message.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close <= open) return;
  ProviderFields inner;
  read_fields(std::string_view(f.message).substr(open, close - open + 1), inner, depth + 1);
  if (!inner.found || inner.message.empty()) return;
  // Keep the proxy's prefix ("litellm.RateLimitError: ...") out of the way
  // but never lose text: the inner message is the upstream's own words.
  // The proxy's own status and code describe the proxy; only the upstream's
  // count, and its status is unknown unless it states one.
  inner.safety_block = inner.safety_block || f.safety_block;
  inner.unwrapped = true;
  f = std::move(inner);
}

void read_error_object(simdjson::dom::element err, ProviderFields& f) {
  f.found = true;
  f.message = member_text(err, "message");
  if (f.message.empty()) f.message = member_text(err, "detail");
  f.type = member_text(err, "type");
  f.code = member_text(err, "code");
  const std::string status = member_text(err, "status");  // google.rpc.Status name
  if (f.type.empty()) f.type = status;
  std::int64_t numeric = 0;
  if (err["code"].get_int64().get(numeric) == simdjson::SUCCESS && numeric >= 100 && numeric <= 599) {
    f.inner_status = static_cast<int>(numeric);
  } else if (auto parsed = parse_int(f.code); parsed && *parsed >= 100 && *parsed <= 599) {
    f.inner_status = static_cast<int>(*parsed);
  }
  // google.rpc.Status details: ErrorInfo.reason ("API_KEY_INVALID",
  // "RATE_LIMIT_EXCEEDED") says more than the generic status name.
  simdjson::dom::array details;
  if (err["details"].get_array().get(details) == simdjson::SUCCESS) {
    for (simdjson::dom::element d : details) {
      const std::string reason = member_text(d, "reason");
      if (reason.empty()) continue;
      // Google's "code" repeats the HTTP status; the reason is the real code.
      f.code = f.code.empty() || parse_int(f.code) ? reason : f.code + " " + reason;
    }
  }
  // OpenRouter: "Provider returned error" with the upstream's own reason in
  // metadata.raw, as JSON text or plain text.
  std::string_view raw;
  if (err.at_pointer("/metadata/raw").get_string().get(raw) == simdjson::SUCCESS && !raw.empty()) {
    f.message = f.message.empty() ? std::string(raw) : f.message + ": " + std::string(raw);
  }
  simdjson::dom::element nested;
  if (err["error"].get(nested) == simdjson::SUCCESS && nested.is_object()) {
    // {"error": {"error": {...}}}: OpenRouter and some gateways nest twice.
    ProviderFields inner;
    read_error_object(nested, inner);
    if (!inner.message.empty()) {
      if (inner.inner_status == 0) inner.inner_status = f.inner_status;
      f = std::move(inner);
    }
  }
}

void read_fields(std::string_view body, ProviderFields& f, int depth) {
  if (body.empty() || body.size() > kMaxParsedBody) return;
  simdjson::dom::parser parser;  // not thread_local: read_fields recurses
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) return;
  if (root.is_array()) {  // Gemini streamGenerateContent wraps the status in a list
    simdjson::dom::array arr = root.get_array().value_unsafe();
    if (arr.size() == 0) return;
    root = arr.at(0).value_unsafe();
  }
  if (!root.is_object()) return;
  simdjson::dom::element block;
  if (root.at_pointer("/promptFeedback/blockReason").get(block) == simdjson::SUCCESS) {
    f.found = true;
    f.safety_block = true;
    f.type = "blockReason";
    f.code = scalar_text(block);
    f.message = "prompt blocked: " + f.code;
    return;
  }
  simdjson::dom::element err;
  if (root["error"].get(err) == simdjson::SUCCESS && !err.is_null()) {
    if (err.is_object()) {
      read_error_object(err, f);
    } else {
      f.found = true;
      f.message = scalar_text(err);
      f.code = member_text(root, "code");
      f.type = member_text(root, "type");
      if (auto n = parse_int(f.code); n && *n >= 100 && *n <= 599) f.inner_status = static_cast<int>(*n);
    }
  } else if (member_text(root, "object") == "error" || member_text(root, "type") == "error" ||
             !member_text(root, "message").empty() || !member_text(root, "detail").empty()) {
    // vLLM {"object":"error",...}, FastAPI {"detail":...}, bare {"message":...}
    read_error_object(root, f);
    if (f.type == "error") f.type.clear();
  }
  if (!f.message.empty()) unwrap_embedded(f, depth);
}

bool contains_any(std::string_view haystack, std::initializer_list<std::string_view> needles) {
  for (auto n : needles) if (icontains(haystack, n)) return true;
  return false;
}

bool looks_like_html(std::string_view body) {
  auto trimmed = trim(body.substr(0, 512));
  return istarts_with(trimmed, "<!doctype html") || istarts_with(trimmed, "<html") || istarts_with(trimmed, "<head") ||
         istarts_with(trimmed, "<?xml");
}

// The category, from the most specific signal to the least: what the
// provider says (code, type, message) before what the status suggests.
ErrorCategory category_for(int http_status, const ProviderFields& f, std::string_view body) {
  // Rules read the status the error itself states when the transport status
  // is uninformative (200, a proxy's 5xx); for an upstream error unwrapped
  // from a proxy's text without a status of its own, no status at all.
  int status = http_status;
  if (f.inner_status != 0 && (http_status == 200 || http_status == 0 || http_status >= 500 || f.unwrapped)) {
    status = f.inner_status;
  } else if (f.unwrapped) {
    status = 0;
  }
  const std::string all = f.code + " | " + f.type + " | " + f.message;
  const std::string_view text = all;

  // One request above a per-minute token allowance (Groq 413, OpenAI 429
  // "Request too large ... TPM"): waiting cannot help, a smaller request or
  // another target can, which is what context_overflow does.
  if (contains_any(text, {"request too large", "reduce your message size", "must be reduced in order to run"})) {
    return ErrorCategory::kContextOverflow;
  }
  const bool per_window = contains_any(text, {"per minute", "per_minute", "perminute", "per second", "per_second",
                                              "requests per min", "tokens per min", "(per minute)"});
  const bool per_day = contains_any(text, {"per day", "per_day", "perday", "per-day", "daily"});
  if (status == 402 ||
      contains_any(text, {"insufficient_quota", "insufficient balance", "insufficient_balance", "insufficient credit",
                          "credit balance", "more credits", "out of credits", "ran out of credits", "can only afford",
                          "billing", "payment required", "exceeded your current quota", "quota exceeded",
                          "exceeded your monthly", "spending limit", "budget has been exceeded", "budget_exceeded",
                          "exceeded budget", "usage limit"})) {
    if (!(per_window && !per_day) || status == 402) return ErrorCategory::kQuotaExhausted;
    return ErrorCategory::kRateLimit;  // a per-minute quota: waiting helps
  }
  // A daily allowance called a rate limit ("free-models-per-day"): only
  // tomorrow, or money, helps.
  if (per_day && !per_window && contains_any(text, {"rate limit", "limit exceeded", "limit reached"})) {
    return ErrorCategory::kQuotaExhausted;
  }
  if (contains_any(text, {"context_length_exceeded", "context length", "context window", "context_window",
                          "maximum context", "context size", "prompt is too long", "input is too long",
                          "too many tokens", "too many input tokens", "reduce the length", "tokens exceeds",
                          "exceeds the maximum number of tokens", "max_tokens_per_request", "tokens per request",
                          "string_above_max_length", "input token count", "exceeds the limit of", "prompt too long",
                          "maximum input length", "input length", "tokens + `max_new_tokens`"}) &&
      !contains_any(text, {"max_tokens must", "max_tokens:"}) && status != 429) {  // "too many tokens" per minute
    return ErrorCategory::kContextOverflow;
  }
  if (f.safety_block ||
      contains_any(text, {"content_filter", "content_policy", "content policy", "content management policy",
                          "content moderation", "responsibleaipolicyviolation", "flagged", "safety system",
                          "content filtering", "blocked by", "unsafe_generation", "unsafe_content", "high risk",
                          "safety reasons", "usage policies", "violat", "prohibited content", "harm_category"})) {
    return ErrorCategory::kContentFilter;
  }
  if (contains_any(text, {"invalid_api_key", "invalid api key", "incorrect api key", "api key not valid",
                          "api_key_invalid", "invalid x-api-key", "authentication_error", "authenticationerror",
                          "invalid_authentication", "unauthenticated", "invalid authentication", "invalid token",
                          "token is inactive", "token_not_found", "token has expired", "key has expired",
                          "expired api key", "revoked", "no api key", "missing api key", "api key is missing",
                          "missing authentication", "invalid subscription key", "not authenticated",
                          "invalid bearer", "access token", "invalid proxy server token", "bad credentials",
                          "unauthorized"}) &&
      !contains_any(text, {"insufficient permissions", "missing scopes"})) {
    return ErrorCategory::kAuth;
  }
  // Codes and phrases that name a missing or retired model count at any
  // status (Groq answers 400 for a decommissioned model); looser phrases
  // ("does not exist", "not supported") only off a 400, where they more
  // often describe a parameter.
  if (contains_any(text, {"model_not_found", "model_decommissioned", "decommissioned", "deploymentnotfound",
                          "not_found_error", "notfounderror", "model not found", "no endpoints found",
                          "not found, try pulling", "is not found for api version", "unknown model",
                          "no such model", "model_not_available", "invalid_model", "not a valid model",
                          "model identifier is invalid", "with on-demand throughput",
                          "invalid model '"}) ||
      (contains_any(f.message, {"model"}) && contains_any(f.message, {" not found"})) ||
      (status != 400 && contains_any(text, {"does not exist", "is not supported", "invalid model", "unknown_model",
                                            "not_found"}))) {
    return ErrorCategory::kModelNotFound;
  }
  // Explicit permission codes count at any status; looser words ("forbidden",
  // "not allowed") only where the status does not say something else, since
  // validation errors use them too ("extra_forbidden").
  const bool weak_status_ok = status == 401 || status == 403 || status == 0 || status == 200 || status >= 500;
  if (contains_any(text, {"permission_error", "permission denied", "permission_denied", "insufficient permissions",
                          "missing scopes", "unsupported_country", "request_forbidden"}) ||
      (weak_status_ok &&
       contains_any(text, {"not allowed", "does not have access", "do not have access", "don't have access",
                           "not authorized", "forbidden", "access is denied",
                           "not available in your", "region", "access denied", "access_denied",
                           "organization has been disabled", "account is not active", "inactive", "public access",
                           "virtual network", "firewall"}))) {
    if (status == 401 && !contains_any(text, {"insufficient permissions", "missing scopes", "permission"})) {
      return ErrorCategory::kAuth;
    }
    return ErrorCategory::kPermission;
  }
  if (contains_any(text, {"rate_limit", "rate limit", "ratelimit", "rate-limit", "too many requests", "throttl", "slow down",
                          "resource_exhausted", "resource exhausted", "resource has been exhausted",
                          "concurrency", "requests per", "tokens per", "try again in"}) &&
      status != 400) {
    return ErrorCategory::kRateLimit;
  }
  if (contains_any(text, {"overloaded", "server_error", "api_error", "internal server error", "internal error",
                          "service unavailable", "temporarily unavailable", "bad gateway", "gateway timeout",
                          "upstream", "unavailable", "deadline_exceeded", "timed out", "timeout",
                          "try again later", "capacity"})) {
    if (status < 400 || status >= 500 || status == 408 || status == 429 || status == 409) {
      // Overload is the provider's capacity, whatever status it came with.
      if (status == 429 && !contains_any(text, {"overload"})) return ErrorCategory::kRateLimit;
      return ErrorCategory::kTransient;
    }
  }
  if (f.unwrapped && contains_any(text, {"invalid_request_error", "invalid_argument", "invalid parameter"})) {
    return ErrorCategory::kBadRequest;  // the upstream refused the request itself
  }
  if (status == 0) status = http_status;
  switch (status) {
    case 401: return ErrorCategory::kAuth;
    case 403: return ErrorCategory::kPermission;
    case 404: return ErrorCategory::kModelNotFound;
    case 429: return ErrorCategory::kRateLimit;
    case 402: return ErrorCategory::kQuotaExhausted;
    case 408: case 409: case 425: return ErrorCategory::kTransient;
    case 400: case 405: case 411: case 413: case 414: case 415: case 422: return ErrorCategory::kBadRequest;
    default: break;
  }
  if (status >= 500) return ErrorCategory::kTransient;
  // An HTML page with a 2xx/3xx (an SSO login page, a captive portal) is
  // nothing a retry is known to cure: unknown, one retry at most.
  if (looks_like_html(body) && status >= 400) return ErrorCategory::kTransient;
  if (contains_any(text, {"invalid_request_error", "invalid_argument", "invalid request", "bad request"})) {
    return ErrorCategory::kBadRequest;
  }
  return ErrorCategory::kUnknown;
}

std::optional<milliseconds> parse_seconds(std::string_view text) {
  auto seconds = parse_double(text);
  if (!seconds || *seconds < 0 || *seconds > 1e7) return std::nullopt;
  return milliseconds(static_cast<std::int64_t>(std::ceil(*seconds * 1000)));
}

// The wait until `t`, computed in absl::Duration so that an infinite or far
// away time (absl parses "infinite-past") cannot overflow chrono arithmetic.
std::optional<milliseconds> delay_until(absl::Time t, std::chrono::system_clock::time_point now) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return std::nullopt;
  const absl::Duration d = t - absl::FromChrono(now);
  if (d <= absl::ZeroDuration()) return milliseconds(0);
  if (d > absl::Hours(24 * 365)) return std::nullopt;  // not a delay anyone means
  return milliseconds(absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1))));
}

std::optional<milliseconds> parse_http_date(std::string_view text, std::chrono::system_clock::time_point now) {
  // absl's RFC1123 format wants a numeric zone; HTTP dates say "GMT".
  std::string value(trim(text));
  if (iends_with(value, " GMT")) value.replace(value.size() - 3, 3, "+0000");
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S %z", value, &t, &err)) return std::nullopt;
  return delay_until(t, now);
}

}  // namespace

std::optional<milliseconds> parse_go_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && (is_digit(text[i]) || text[i] == '.')) ++i;
    auto parsed = parse_double(text.substr(start, i - start));
    if (start == i || !parsed) return std::nullopt;
    const double number = *parsed;
    std::size_t unit_start = i;
    while (i < text.size() && (is_alpha(text[i]) || static_cast<unsigned char>(text[i]) >= 0x80)) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit == "h") total_ms += number * 3'600'000;
    else if (unit == "m") total_ms += number * 60'000;
    else if (unit == "s" || unit.empty()) total_ms += number * 1000;
    else if (unit == "ms") total_ms += number;
    else if (unit == "us" || unit == "µs") total_ms += number / 1000;
    else if (unit == "ns") total_ms += number / 1e6;
    else return std::nullopt;
  }
  if (!std::isfinite(total_ms) || total_ms > 1e10) return std::nullopt;
  return milliseconds(static_cast<std::int64_t>(std::ceil(total_ms)));
}

namespace {

// "20s", "1.5s", "120ms", "6m0s", "7 seconds", "2 minutes" at the start of
// `text` (lower case).
std::optional<milliseconds> leading_duration(std::string_view text) {
  std::size_t end = 0;
  while (end < text.size() && (is_alnum(text[end]) || text[end] == '.')) ++end;
  while (end > 0 && text[end - 1] == '.') --end;  // a sentence's full stop
  const std::string_view token = text.substr(0, end);
  const bool has_unit = std::any_of(token.begin(), token.end(), [](char c) { return is_alpha(c); });
  if (has_unit) {
    if (auto compact = parse_go_duration(token)) return compact;  // "20s", "6m0s", "120ms"
  }
  std::size_t i = 0;
  while (i < text.size() && (is_digit(text[i]) || text[i] == '.')) ++i;
  auto value = parse_double(text.substr(0, i));
  if (!value) return std::nullopt;
  std::size_t j = i;
  while (j < text.size() && text[j] == ' ') ++j;
  std::size_t k = j;
  while (k < text.size() && is_alpha(text[k])) ++k;
  const std::string_view unit = text.substr(j, k - j);
  double ms;
  if (unit == "millisecond" || unit == "milliseconds") ms = *value;
  else if (unit == "sec" || unit == "secs" || unit == "second" || unit == "seconds") ms = *value * 1000;
  else if (unit == "min" || unit == "mins" || unit == "minute" || unit == "minutes") ms = *value * 60'000;
  else if (unit == "hour" || unit == "hours") ms = *value * 3'600'000;
  else return std::nullopt;
  if (ms > 1e10) return std::nullopt;
  return milliseconds(static_cast<std::int64_t>(std::ceil(ms)));
}

// A delay written in the body: "Please try again in 20s", "retry after 60
// seconds", "Please retry in 43.5s", or google.rpc.RetryInfo "retryDelay".
std::optional<milliseconds> body_delay(std::string_view body) {
  static constexpr std::string_view kLeads[] = {"try again in ", "retry in ", "retry after ", "try again after ",
                                                "\"retrydelay\": \"", "\"retrydelay\":\"", "wait "};
  const std::string lower = to_lower(body.substr(0, 64u << 10));
  for (std::string_view lead : kLeads) {
    for (std::size_t at = lower.find(lead); at != std::string::npos; at = lower.find(lead, at + 1)) {
      if (auto d = leading_duration(std::string_view(lower).substr(at + lead.size()))) return d;
    }
  }
  return std::nullopt;
}

std::optional<milliseconds> rfc3339_delay(std::string_view text, std::chrono::system_clock::time_point now) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(trim(text)), &t, &err)) return std::nullopt;
  return delay_until(t, now);
}

// The reset delay of the rate limits that are exhausted (remaining == 0);
// with no remaining-headers at all, of any limit that names a reset.
std::optional<milliseconds> reset_delay(const Headers& headers, std::chrono::system_clock::time_point now) {
  struct Limit {
    std::string_view remaining, reset;
    bool rfc3339;
  };
  static constexpr Limit kLimits[] = {
      {"x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", false},
      {"x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", false},
      {"anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", true},
      {"anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset", true},
      {"anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset", true},
      {"anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset", true},
  };
  std::optional<milliseconds> exhausted, any;
  bool saw_remaining = false;
  for (const Limit& l : kLimits) {
    const std::string* reset = find_header(headers, l.reset);
    if (!reset) continue;
    auto d = l.rfc3339 ? rfc3339_delay(*reset, now) : parse_go_duration(*reset);
    if (!d) continue;
    any = any ? std::max(*any, *d) : *d;
    if (const std::string* remaining = find_header(headers, l.remaining)) {
      saw_remaining = true;
      if (auto n = parse_int(*remaining); n && *n <= 0) exhausted = exhausted ? std::max(*exhausted, *d) : *d;
    }
  }
  return saw_remaining ? exhausted : any;
}

}  // namespace

std::optional<milliseconds> requested_delay(const Headers& headers, std::chrono::system_clock::time_point now) {
  return requested_delay(headers, {}, now);
}

std::optional<milliseconds> requested_delay(const Headers& headers, std::string_view body,
                                            std::chrono::system_clock::time_point now) {
  if (const auto* v = find_header(headers, "retry-after-ms")) {
    if (auto ms = parse_double(*v); ms && *ms >= 0 && *ms < 1e10) {
      return milliseconds(static_cast<std::int64_t>(std::ceil(*ms)));
    }
  }
  if (const auto* v = find_header(headers, "retry-after")) {
    if (auto s = parse_seconds(*v)) return s;
    if (auto d = parse_http_date(*v, now)) return d;
  }
  if (auto d = body_delay(body)) return d;
  return reset_delay(headers, now);
}

std::string redact_secrets(std::string_view text) {
  static constexpr std::array<std::string_view, 6> kPrefixes = {"sk-", "sk_", "key-", "AIza", "xai-", "gsk_"};
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  auto is_key_char = [](char c) { return is_alnum(c) || c == '-' || c == '_'; };
  while (i < text.size()) {
    std::size_t prefix_len = 0;
    if (i == 0 || !is_key_char(text[i - 1])) {
      for (auto p : kPrefixes) {
        if (text.substr(i, p.size()) == p) { prefix_len = p.size(); break; }
      }
      if (prefix_len == 0 && istarts_with(text.substr(i), "bearer ")) prefix_len = 7;
    }
    if (prefix_len > 0) {
      std::size_t end = i + prefix_len;
      while (end < text.size() && is_key_char(text[end])) ++end;
      // Short tails are words ("sk-learn"), not keys.
      if (end - (i + prefix_len) >= 8) {
        out.append(text.substr(i, prefix_len));
        out += "***";
        i = end;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

std::string hint_for(const Error& e) {
  const std::string_view m = e.message;
  switch (e.category) {
    case ErrorCategory::kAuth:
      if (icontains(m, "subscription key")) {  // Azure's wording
        return "check the api-key header value and that the endpoint is this key's Azure resource";
      }
      return "the API key is missing, mistyped, expired or revoked: check the key this target uses, or rotate it";
    case ErrorCategory::kPermission:
      return "the key is valid but not allowed here: check model access, project/organisation, region and IP rules";
    case ErrorCategory::kModelNotFound:
      if (icontains(m, "deployment")) return "check the Azure deployment name (it is not the model name) and api-version";
      if (icontains(m, "invalid url") || icontains(m, "unknown path")) {
        return "the URL path is wrong: base_url must be the API root with its version, e.g. https://api.openai.com/v1";
      }
      return "check the model name and that this key has access to it";
    case ErrorCategory::kRateLimit:
      return "throttled: wait as asked, lower concurrency, or spread load across keys/targets";
    case ErrorCategory::kQuotaExhausted:
      return "out of credits or quota: add billing/credits or raise the quota; retrying will not help";
    case ErrorCategory::kContextOverflow:
      return "prompt plus max_tokens exceed the model's context window: shorten the messages, lower max_tokens, "
             "or fall back to a larger-context model";
    case ErrorCategory::kContentFilter:
      return "refused by a content policy: rephrase the request or route it to a target with another policy";
    case ErrorCategory::kBadRequest:
      return "the request is invalid and will fail again: fix the field the message names";
    case ErrorCategory::kTransient:
      return "provider or gateway trouble: retried with backoff; persistent failures mean an outage";
    case ErrorCategory::kTimeout:
      return "no (complete) answer in time: raise timeouts for long generations or use streaming";
    case ErrorCategory::kConnection:
      return "could not reach the endpoint or the connection broke: check base_url, DNS, proxy and TLS";
    case ErrorCategory::kCancelled:
      return "the caller cancelled the call";
    case ErrorCategory::kBudgetExceeded:
      return "the call would overrun a configured budget";
    case ErrorCategory::kCircuitOpen:
      return "the target failed repeatedly and is paused; it is probed again after its cooldown";
    case ErrorCategory::kUnknown:
      return "unrecognised failure: it is retried once; check the provider's message";
  }
  return {};
}

Error classify_exchange(int http_status, const Headers& headers, std::string_view body, bool stream,
                        std::chrono::system_clock::time_point now) {
  if (stream && looks_like_html(body) == false && http_status >= 200 && http_status < 300) {
    // An SSE body: the first event carrying an error decides.
    SseParser parser;
    std::optional<Error> found;
    std::string text(body);
    text += "\n\n";  // dispatch a final event left unterminated
    parser.feed(text, [&](const SseEvent& event) {
      if (!icontains(event.data, "error")) return true;
      Error e = classify_response(http_status, headers, event.data, now);
      if (e.message.empty() && e.provider_type.empty() && e.provider_code.empty()) return true;
      found = std::move(e);
      return false;
    });
    if (found) {
      found->hint = hint_for(*found);
      return std::move(*found);
    }
  }
  Error e = classify_response(http_status, headers, body, now);
  e.hint = hint_for(e);
  return e;
}

Error classify_response(int http_status, const Headers& headers, std::string_view body,
                        std::chrono::system_clock::time_point now) {
  Error e;
  e.http_status = http_status;
  ProviderFields f;
  read_fields(body, f, 0);
  const bool html = looks_like_html(body);
  if (!f.found && !html) f.message = std::string(trim(body.substr(0, 1024)));  // plain-text bodies
  e.category = category_for(http_status, f, body);
  e.provider_code = redact_secrets(f.code);
  e.provider_type = redact_secrets(f.type);
  if (!f.message.empty()) {
    e.message = redact_secrets(f.message);
  } else if (html) {
    e.message = fmt::format("HTTP {} with an HTML page (a gateway or proxy answered, not the API)", http_status);
  } else if (body.empty()) {
    e.message = fmt::format("HTTP {} with an empty body", http_status);
  } else {
    e.message = redact_secrets(body.substr(0, 512));
  }
  e.retry_after = requested_delay(headers, body, now);
  return e;
}

}  // namespace llmguard::internal
