#include "classify.h"

#include <absl/time/time.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

#include "phrase_matcher.h"
#include "sse.h"
#include "text.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;

// What an error body says, after unwrapping envelopes and proxies.
struct ProviderFields {
  std::string code, type, message;
  int inner_status = 0;       // an HTTP status carried inside the body (proxies)
  bool found = false;         // an error object or message was recognised
  bool json = false;          // the body parsed as JSON
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
  simdjson::dom::object fields;
  if (err.get_object().get(fields) != simdjson::SUCCESS) return;
  // One pass over the members (each keyed lookup would rescan them); the
  // first of a duplicated key counts, as a keyed lookup would have it.
  std::optional<simdjson::dom::element> message, detail, type, code, status, details, metadata, nested;
  for (simdjson::dom::key_value_pair member : fields) {
    const std::string_view key = member.key;
    auto keep = [&member](std::optional<simdjson::dom::element>& slot) {
      if (!slot) slot = member.value;
    };
    if (key == "message") keep(message);
    else if (key == "detail") keep(detail);
    else if (key == "type") keep(type);
    else if (key == "code") keep(code);
    else if (key == "status") keep(status);  // google.rpc.Status name
    else if (key == "details") keep(details);
    else if (key == "metadata") keep(metadata);
    else if (key == "error") keep(nested);
  }
  auto text_of = [](const std::optional<simdjson::dom::element>& v) { return v ? scalar_text(*v) : std::string(); };
  f.message = text_of(message);
  if (f.message.empty()) f.message = text_of(detail);
  f.type = text_of(type);
  f.code = text_of(code);
  if (f.type.empty()) f.type = text_of(status);
  std::int64_t numeric = 0;
  if (code && code->get_int64().get(numeric) == simdjson::SUCCESS && numeric >= 100 && numeric <= 599) {
    f.inner_status = static_cast<int>(numeric);
  } else if (auto parsed = parse_int(f.code); parsed && *parsed >= 100 && *parsed <= 599) {
    f.inner_status = static_cast<int>(*parsed);
  }
  // google.rpc.Status details: ErrorInfo.reason ("API_KEY_INVALID",
  // "RATE_LIMIT_EXCEEDED") says more than the generic status name.
  simdjson::dom::array detail_list;
  if (details && details->get_array().get(detail_list) == simdjson::SUCCESS) {
    for (simdjson::dom::element d : detail_list) {
      const std::string reason = member_text(d, "reason");
      if (reason.empty()) continue;
      // Google's "code" repeats the HTTP status; the reason is the real code.
      f.code = f.code.empty() || parse_int(f.code) ? reason : f.code + " " + reason;
    }
  }
  // OpenRouter: "Provider returned error" with the upstream's own reason in
  // metadata.raw, as JSON text or plain text.
  std::string_view raw;
  if (metadata && (*metadata)["raw"].get_string().get(raw) == simdjson::SUCCESS && !raw.empty()) {
    f.message = f.message.empty() ? std::string(raw) : f.message + ": " + std::string(raw);
  }
  if (nested && nested->is_object()) {
    // {"error": {"error": {...}}}: OpenRouter and some gateways nest twice.
    ProviderFields inner;
    read_error_object(*nested, inner);
    if (!inner.message.empty()) {
      if (inner.inner_status == 0) inner.inner_status = f.inner_status;
      f = std::move(inner);
    }
  }
}

void read_fields(std::string_view body, ProviderFields& f, int depth) {
  if (body.empty() || body.size() > kMaxParsedBody) return;
  // One reusable parser per unwrap depth and thread: the elements of an outer
  // document stay valid while an inner one is parsed.
  thread_local std::array<simdjson::dom::parser, kMaxUnwrapDepth + 1> parsers;
  simdjson::dom::element root;
  if (parsers[static_cast<std::size_t>(depth)].parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) {
    return;
  }
  f.json = true;
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

bool looks_like_html(std::string_view body) {
  auto trimmed = trim(body.substr(0, 512));
  return istarts_with(trimmed, "<!doctype html") || istarts_with(trimmed, "<html") || istarts_with(trimmed, "<head") ||
         istarts_with(trimmed, "<?xml");
}

// The phrases the category rules look for, all found in one pass.
struct Phrases {
  PhraseMatcher matcher;
  PhraseSet too_large_for_tier{matcher,
                               {"request too large", "reduce your message size", "must be reduced in order to run"}};
  PhraseSet per_window{matcher,
                       {"per minute", "per_minute", "perminute", "per second", "per_second", "requests per min",
                        "tokens per min", "(per minute)"}};
  PhraseSet per_day{matcher, {"per day", "per_day", "perday", "per-day", "daily"}};
  PhraseSet quota{
      matcher,
      {"insufficient_quota", "insufficient balance", "insufficient_balance", "insufficient credit", "credit balance",
       "more credits", "out of credits", "ran out of credits", "can only afford", "billing", "payment required",
       "exceeded your current quota", "quota exceeded", "exceeded your monthly", "spending limit",
       "budget has been exceeded", "budget_exceeded", "exceeded budget", "usage limit"}};
  PhraseSet limit_hit{matcher, {"rate limit", "limit exceeded", "limit reached"}};
  PhraseSet context{matcher,
                    {"context_length_exceeded",
                     "context length",
                     "context window",
                     "context_window",
                     "maximum context",
                     "context size",
                     "prompt is too long",
                     "input is too long",
                     "too many tokens",
                     "too many input tokens",
                     "reduce the length",
                     "tokens exceeds",
                     "exceeds the maximum number of tokens",
                     "max_tokens_per_request",
                     "tokens per request",
                     "string_above_max_length",
                     "input token count",
                     "exceeds the limit of",
                     "prompt too long",
                     "maximum input length",
                     "input length",
                     "tokens + `max_new_tokens`"}};
  PhraseSet max_tokens_param{matcher, {"max_tokens must", "max_tokens:"}};
  PhraseSet content_filter{matcher,
                           {"content_filter", "content_policy", "content policy", "content management policy",
                            "content moderation", "responsibleaipolicyviolation", "flagged", "safety system",
                            "content filtering", "blocked by", "unsafe_generation", "unsafe_content", "high risk",
                            "safety reasons", "usage policies", "violat", "prohibited content", "harm_category"}};
  PhraseSet auth{matcher,
                 {"invalid_api_key",
                  "invalid api key",
                  "incorrect api key",
                  "api key not valid",
                  "api_key_invalid",
                  "invalid x-api-key",
                  "authentication_error",
                  "authenticationerror",
                  "invalid_authentication",
                  "unauthenticated",
                  "invalid authentication",
                  "invalid token",
                  "token is inactive",
                  "token_not_found",
                  "token has expired",
                  "key has expired",
                  "expired api key",
                  "revoked",
                  "no api key",
                  "missing api key",
                  "api key is missing",
                  "missing authentication",
                  "invalid subscription key",
                  "not authenticated",
                  "invalid bearer",
                  "access token",
                  "invalid proxy server token",
                  "bad credentials",
                  "unauthorized"}};
  PhraseSet scopes{matcher, {"insufficient permissions", "missing scopes"}};
  PhraseSet model_strong{
      matcher,
      {"model_not_found", "model_decommissioned", "decommissioned", "deploymentnotfound", "not_found_error",
       "notfounderror", "model not found", "no endpoints found", "not found, try pulling",
       "is not found for api version", "unknown model", "no such model", "model_not_available", "invalid_model",
       "not a valid model", "model identifier is invalid", "with on-demand throughput", "invalid model '"}};
  PhraseSet model{matcher, {"model"}};
  PhraseSet not_found{matcher, {" not found"}};
  PhraseSet model_loose{matcher, {"does not exist", "is not supported", "invalid model", "unknown_model", "not_found"}};
  PhraseSet permission_strong{matcher,
                              {"permission_error", "permission denied", "permission_denied", "insufficient permissions",
                               "missing scopes", "unsupported_country", "request_forbidden"}};
  PhraseSet permission_weak{matcher,
                            {"not allowed", "does not have access", "do not have access", "don't have access",
                             "not authorized", "forbidden", "access is denied", "not available in your", "region",
                             "access denied", "access_denied", "organization has been disabled",
                             "account is not active", "inactive", "public access", "virtual network", "firewall"}};
  PhraseSet permission_word{matcher, {"insufficient permissions", "missing scopes", "permission"}};
  PhraseSet rate_limit{matcher,
                       {"rate_limit", "rate limit", "ratelimit", "rate-limit", "too many requests", "throttl",
                        "slow down", "resource_exhausted", "resource exhausted", "resource has been exhausted",
                        "concurrency", "requests per", "tokens per", "try again in"}};
  PhraseSet transient{matcher,
                      {"overloaded", "server_error", "api_error", "internal server error", "internal error",
                       "service unavailable", "temporarily unavailable", "bad gateway", "gateway timeout", "upstream",
                       "unavailable", "deadline_exceeded", "timed out", "timeout", "try again later", "capacity"}};
  PhraseSet overload{matcher, {"overload"}};
  PhraseSet invalid_request{matcher, {"invalid_request_error", "invalid_argument", "invalid parameter"}};
  PhraseSet bad_request{matcher, {"invalid_request_error", "invalid_argument", "invalid request", "bad request"}};
  // The leads body_delay() reads a number after: only messages holding one
  // are searched for a delay.
  PhraseSet delay_lead{matcher, {"try again in ", "retry in ", "retry after ", "try again after ", "wait "}};
  Phrases() { matcher.build(); }
};

const Phrases& phrases() {
  static const Phrases p;
  return p;
}

// The fields lower-cased once and scanned once for every phrase the rules use.
struct ScannedFields {
  std::string_view lower;  // valid until the thread's next scan
  PhraseMatcher::Found found;
};

ScannedFields scan_fields(const ProviderFields& f) {
  thread_local std::string text;
  text.clear();
  text.append(f.code).append(" | ").append(f.type).append(" | ").append(f.message);
  for (char& c : text) c = ascii_lower(c);
  ScannedFields out{.lower = text};
  phrases().matcher.scan(text, out.found);
  return out;
}

// The category, from the most specific signal to the least: what the
// provider says (code, type, message) before what the status suggests.
ErrorCategory category_for(int http_status, const ProviderFields& f, const PhraseMatcher::Found& found,
                           std::string_view body) {
  // Rules read the status the error itself states when the transport status
  // is uninformative (200, a proxy's 5xx); for an upstream error unwrapped
  // from a proxy's text without a status of its own, no status at all.
  int status = http_status;
  if (f.inner_status != 0 && (http_status == 200 || http_status == 0 || http_status >= 500 || f.unwrapped)) {
    status = f.inner_status;
  } else if (f.unwrapped) {
    status = 0;
  }
  const Phrases& p = phrases();
  auto has = [&found](const PhraseSet& set) { return set.any(found); };

  // One request above a per-minute token allowance (Groq 413, OpenAI 429
  // "Request too large ... TPM"): waiting cannot help, a smaller request or
  // another target can, which is what context_overflow does.
  if (has(p.too_large_for_tier)) {
    return ErrorCategory::kContextOverflow;
  }
  const bool per_window = has(p.per_window);
  const bool per_day = has(p.per_day);
  if (status == 402 || has(p.quota)) {
    if (!(per_window && !per_day) || status == 402) return ErrorCategory::kQuotaExhausted;
    return ErrorCategory::kRateLimit;  // a per-minute quota: waiting helps
  }
  // A daily allowance called a rate limit ("free-models-per-day"): only
  // tomorrow, or money, helps.
  if (per_day && !per_window && has(p.limit_hit)) {
    return ErrorCategory::kQuotaExhausted;
  }
  if (has(p.context) && !has(p.max_tokens_param) && status != 429) {  // "too many tokens" per minute
    return ErrorCategory::kContextOverflow;
  }
  if (f.safety_block || has(p.content_filter)) {
    return ErrorCategory::kContentFilter;
  }
  if (has(p.auth) && !has(p.scopes)) {
    return ErrorCategory::kAuth;
  }
  // Codes and phrases that name a missing or retired model count at any
  // status (Groq answers 400 for a decommissioned model); looser phrases
  // ("does not exist", "not supported") only off a 400, where they more
  // often describe a parameter.
  if (has(p.model_strong) || (has(p.model) && has(p.not_found)) || (status != 400 && has(p.model_loose))) {
    return ErrorCategory::kModelNotFound;
  }
  // Explicit permission codes count at any status; looser words ("forbidden",
  // "not allowed") only where the status does not say something else, since
  // validation errors use them too ("extra_forbidden").
  const bool weak_status_ok = status == 401 || status == 403 || status == 0 || status == 200 || status >= 500;
  if (has(p.permission_strong) || (weak_status_ok && has(p.permission_weak))) {
    if (status == 401 && !has(p.permission_word)) {
      return ErrorCategory::kAuth;
    }
    return ErrorCategory::kPermission;
  }
  if (has(p.rate_limit) && status != 400) {
    return ErrorCategory::kRateLimit;
  }
  if (has(p.transient)) {
    if (status < 400 || status >= 500 || status == 408 || status == 429 || status == 409) {
      // Overload is the provider's capacity, whatever status it came with.
      if (status == 429 && !has(p.overload)) return ErrorCategory::kRateLimit;
      return ErrorCategory::kTransient;
    }
  }
  if (f.unwrapped && has(p.invalid_request)) {
    return ErrorCategory::kBadRequest;  // the upstream refused the request itself
  }
  if (status == 0) status = http_status;
  switch (status) {
    case 401:
      return ErrorCategory::kAuth;
    case 403:
      return ErrorCategory::kPermission;
    case 404:
      return ErrorCategory::kModelNotFound;
    case 429:
      return ErrorCategory::kRateLimit;
    case 402:
      return ErrorCategory::kQuotaExhausted;
    case 408:
    case 409:
    case 425:
      return ErrorCategory::kTransient;
    // Too large for this target (an API's or a gateway's body limit): the same
    // request fails here again, a shorter one or another target may not.
    case 413:
      return ErrorCategory::kContextOverflow;
    case 400:
    case 405:
    case 411:
    case 414:
    case 415:
    case 422:
      return ErrorCategory::kBadRequest;
    default:
      break;
  }
  if (status >= 500) return ErrorCategory::kTransient;
  // An HTML page with a 2xx/3xx (an SSO login page, a captive portal) is
  // nothing a retry is known to cure: unknown, one retry at most.
  if (looks_like_html(body) && status >= 400) return ErrorCategory::kTransient;
  if (has(p.bad_request)) {
    return ErrorCategory::kBadRequest;
  }
  return ErrorCategory::kUnknown;
}

// Providers' delays, however large, stay delays: one above max_retry_after
// means "fall back now", so a huge or infinite one must not be dropped (and
// then retried after ordinary backoff). ~115 days is beyond any cap.
constexpr milliseconds kLongestDelay{10'000'000'000};

milliseconds saturated_ms(double ms) {
  if (!(ms < static_cast<double>(kLongestDelay.count()))) return kLongestDelay;
  return milliseconds(static_cast<std::int64_t>(std::ceil(std::max(ms, 0.0))));
}

std::optional<milliseconds> parse_seconds(std::string_view text) {
  auto seconds = parse_double(text);
  if (!seconds || !(*seconds >= 0)) return std::nullopt;
  return saturated_ms(*seconds * 1000);
}

// The wait until `t`, computed in absl::Duration so that an infinite or far
// away time (absl parses "infinite-past") cannot overflow chrono arithmetic.
std::optional<milliseconds> delay_until(absl::Time t, std::chrono::system_clock::time_point now) {
  if (t == absl::InfinitePast()) return std::nullopt;
  if (t == absl::InfiniteFuture()) return kLongestDelay;
  const absl::Duration d = t - absl::FromChrono(now);
  if (d <= absl::ZeroDuration()) return milliseconds(0);
  return saturated_ms(absl::ToDoubleMilliseconds(absl::Ceil(d, absl::Milliseconds(1))));
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
  if (std::isnan(total_ms)) return std::nullopt;
  return saturated_ms(total_ms);
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
  return saturated_ms(ms);
}

// A delay written in lower-case text: "please try again in 20s", "retry after
// 60 seconds", "please retry in 43.5s", or google.rpc.RetryInfo "retryDelay".
std::optional<milliseconds> delay_in_lowercase(std::string_view text) {
  // In order of trust: an earlier lead found anywhere beats a later one.
  static constexpr std::string_view kLeads[] = {
      "try again in ",      "retry in ",         "retry after ", "try again after ",
      "\"retrydelay\": \"", "\"retrydelay\":\"", "wait "};
  for (std::string_view lead : kLeads) {
    for (std::size_t at = text.find(lead); at != std::string_view::npos; at = text.find(lead, at + 1)) {
      if (auto d = leading_duration(text.substr(at + lead.size()))) return d;
    }
  }
  return std::nullopt;
}

std::optional<milliseconds> body_delay(std::string_view body) {
  // Delays sit in the message or the RetryInfo detail, near the start; the
  // lower-cased copy reuses one buffer per thread.
  thread_local std::string lower;
  const std::string_view head = body.substr(0, 16u << 10);
  lower.resize(head.size());
  std::transform(head.begin(), head.end(), lower.begin(), ascii_lower);
  return delay_in_lowercase(lower);
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

namespace {

std::optional<milliseconds> retry_after_headers(const Headers& headers, std::chrono::system_clock::time_point now) {
  if (const auto* v = find_header(headers, "retry-after-ms")) {
    if (auto ms = parse_double(*v); ms && *ms >= 0) return saturated_ms(*ms);
  }
  if (const auto* v = find_header(headers, "retry-after")) {
    if (auto s = parse_seconds(*v)) return s;
    if (auto d = parse_http_date(*v, now)) return d;
  }
  return std::nullopt;
}

}  // namespace

std::optional<milliseconds> requested_delay(const Headers& headers, std::string_view body,
                                            std::chrono::system_clock::time_point now) {
  if (auto d = retry_after_headers(headers, now)) return d;
  if (auto d = body_delay(body)) return d;
  return reset_delay(headers, now);
}

namespace {

constexpr bool is_key_char(char c) { return is_alnum(c) || c == '-' || c == '_'; }

// Whether a key prefix ("sk-", "AIza", "Bearer ", ...) ends at `last`.
// Testing the prefixes' last bytes, rarer in prose than their first, keeps
// text without keys at a compare or two per byte.
bool secret_prefix_ends_at(std::string_view text, std::size_t last) {
  auto prefix_at = [&](std::string_view prefix, bool ignore_case = false) {
    if (last + 1 < prefix.size()) return false;
    const std::size_t start = last + 1 - prefix.size();
    const std::string_view candidate = text.substr(start, prefix.size());
    if (!(ignore_case ? iequals(candidate, prefix) : candidate == prefix)) return false;
    return start == 0 || !is_key_char(text[start - 1]);  // "task-..." holds no "sk-" key
  };
  switch (text[last]) {
    case '-':
      return prefix_at("sk-") || prefix_at("key-") || prefix_at("xai-");
    case '_':
      return prefix_at("sk_") || prefix_at("gsk_");
    case 'a':
      return last > 0 && text[last - 1] == 'z' && prefix_at("AIza");
    case ' ':
      return last > 0 && ascii_lower(text[last - 1]) == 'r' && prefix_at("bearer ", true);
    default:
      return false;
  }
}

}  // namespace

std::string redact_secrets(std::string_view text) {
  std::string out;
  std::size_t copied = 0;  // text[0, copied) is already in `out`
  static constexpr auto kMayEndPrefix = [] {
    std::array<bool, 256> t{};
    for (unsigned char c : std::string_view("-_a ")) t[c] = true;
    return t;
  }();
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!kMayEndPrefix[static_cast<unsigned char>(text[i])] || !secret_prefix_ends_at(text, i)) continue;
    std::size_t end = i + 1;
    while (end < text.size() && is_key_char(text[end])) ++end;
    // Short tails are words ("sk-learn"), not keys.
    if (end - (i + 1) < 8) continue;
    if (out.empty()) out.reserve(text.size());
    out.append(text.substr(copied, i + 1 - copied));
    out += "***";
    copied = end;
    i = end - 1;
  }
  if (copied == 0) return std::string(text);
  out.append(text.substr(copied));
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
      if (icontains(m, "deployment"))
        return "check the Azure deployment name (it is not the model name) and api-version";
      // A 404 that names no model is the path: "Invalid URL (POST ...)", a
      // gateway's HTML page, a framework's bare "Not Found".
      if (icontains(m, "invalid url") || icontains(m, "unknown path") ||
          (e.http_status == 404 && !icontains(m, "model"))) {
        return "the URL path is wrong: base_url must be the API root with its version, e.g. https://api.openai.com/v1";
      }
      return "check the model name and that this key has access to it";
    case ErrorCategory::kRateLimit:
      return "throttled: wait as asked, lower concurrency, or spread load across keys/targets";
    case ErrorCategory::kQuotaExhausted:
      return "out of credits or quota: add billing/credits or raise the quota; retrying will not help";
    case ErrorCategory::kContextOverflow:
      if (e.http_status == 413 && !icontains(m, "token")) {
        return "the request body is over a size limit (the API's, or a gateway's such as nginx client_max_body_size): "
               "shorten the messages or send them to a target that accepts more";
      }
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
      if (icontains(m, "with an html page") || (e.http_status >= 300 && e.http_status < 400)) {
        return "a web page or redirect answered, not the API: check that base_url is the API root "
               "(e.g. https://api.openai.com/v1) and that no login proxy intercepts the call";
      }
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
  // Plain-text bodies are the message; JSON with no error in it says nothing
  // to classify by (its field names are no message).
  if (!f.found && !html && !f.json) f.message = std::string(trim(body.substr(0, 1024)));
  const ScannedFields scanned = scan_fields(f);
  e.category = category_for(http_status, f, scanned.found, body);
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
  // As requested_delay(), but the body is searched only where the scan saw a
  // lead (in the message) or Google's RetryInfo.
  if (const std::string* verdict = find_header(headers, "x-should-retry")) {
    if (iequals(trim(*verdict), "true")) e.should_retry = true;
    else if (iequals(trim(*verdict), "false")) e.should_retry = false;
  }
  e.retry_after = retry_after_headers(headers, now);
  if (!e.retry_after && phrases().delay_lead.any(scanned.found)) e.retry_after = delay_in_lowercase(scanned.lower);
  if (!e.retry_after) {
    if (const std::size_t at = body.find("\"retryDelay\""); at != std::string_view::npos) {
      e.retry_after = body_delay(body.substr(at, 64));
    }
  }
  if (!e.retry_after) e.retry_after = reset_delay(headers, now);
  return e;
}

}  // namespace llmguard::internal
