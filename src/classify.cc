#include "classify.h"

#include <absl/time/time.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

#include "classify_rules.h"
#include "error_fields.h"
#include "sse.h"
#include "text.h"
#include "user_rules.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;

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
  // Gateways' own names for a delay in seconds (Kong AI Gateway, Moonshot's
  // edge, the IETF RateLimit fields' reset).
  for (std::string_view name : {"x-ai-ratelimit-retry-after", "x-retry-after", "x-ratelimit-retry-after"}) {
    if (const auto* v = find_header(headers, name)) {
      if (auto s = parse_seconds(*v)) return s;
    }
  }
  if (const auto* v = find_header(headers, "ratelimit-reset")) return parse_seconds(*v);
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

namespace {

// The first event of an SSE body that carries an error; a bare JSON error
// after the events (Vertex AI ends a failed stream with one) counts too.
std::optional<std::string> stream_error_event(const Headers& headers, std::string_view body) {
  SseParser parser;
  std::optional<std::string> found;
  std::string text(body);
  text += "\n\n";  // dispatch a final event left unterminated
  parser.feed(text, [&](const SseEvent& event) {
    if (!icontains(event.data, "error") && !icontains(event.data, "finishReason")) return true;
    if (!read_error_fields(headers, event.data).found) return true;
    found = event.data;
    return false;
  });
  if (found) return found;
  if (const std::size_t bare = body.find("\n{"); bare != std::string_view::npos) {
    const std::string_view rest = body.substr(bare + 1);
    if (read_error_fields(headers, rest).found) return std::string(rest);
  }
  return std::nullopt;
}

}  // namespace

Error classify_exchange(int http_status, const Headers& headers, std::string_view body, bool stream,
                        std::chrono::system_clock::time_point now, std::string* evidence, const UserRules* user_rules) {
  std::optional<std::string> event;
  if (stream && !looks_like_html(body) && http_status >= 200 && http_status < 300) {
    event = stream_error_event(headers, body);
  }
  Error e = classify_response(http_status, headers, event ? std::string_view(*event) : body, now, evidence, user_rules);
  e.hint = hint_for(e);
  return e;
}

Error classify_response(int http_status, const Headers& headers, std::string_view body,
                        std::chrono::system_clock::time_point now, std::string* evidence, const UserRules* user_rules) {
  Error e;
  e.http_status = http_status;
  ErrorFields f = read_error_fields(headers, body);
  const bool html = looks_like_html(body);
  // Plain-text bodies are the message; JSON with no error in it says nothing
  // to classify by (its field names are no message).
  if (!f.found && !html && !f.json) f.message = std::string(trim(body.substr(0, 1024)));
  bool mentions_delay = false;
  std::optional<UserRules::Match> own;
  if (user_rules && !user_rules->empty()) own = user_rules->match(http_status, headers, body, f);
  if (own) {
    e.category = own->rule->category;
    e.rule = own->rule->id;
    if (evidence) *evidence = std::move(own->evidence);
    if (own->delay) f.delay = own->delay;
    mentions_delay = true;  // the built-in rules did not read the words: look for a delay in them
  } else {
    Verdict verdict = categorize(http_status, f, html, evidence != nullptr);
    e.category = verdict.category;
    e.rule = std::string(verdict.rule);
    if (evidence) *evidence = std::move(verdict.evidence);
    mentions_delay = verdict.mentions_delay;
  }
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
  if (const std::string* verdict_header = find_header(headers, "x-should-retry")) {
    if (iequals(trim(*verdict_header), "true")) e.should_retry = true;
    else if (iequals(trim(*verdict_header), "false")) e.should_retry = false;
  }
  // As requested_delay(): headers, then what the error says (its structure,
  // then its words), then the reset time of an exhausted limit.
  e.retry_after = retry_after_headers(headers, now);
  if (!e.retry_after) e.retry_after = f.delay;
  if (!e.retry_after && mentions_delay) e.retry_after = body_delay(f.message);
  if (!e.retry_after) {
    if (const std::size_t at = body.find("\"retryDelay\""); at != std::string_view::npos) {
      e.retry_after = body_delay(body.substr(at, 64));
    }
  }
  if (!e.retry_after) e.retry_after = reset_delay(headers, now);
  return e;
}

}  // namespace llmguard::internal
