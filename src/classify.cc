#include "classify.h"

#include <absl/time/time.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <array>
#include <cmath>

#include "sse.h"
#include "text.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;

struct ProviderFields {
  std::string code, type, message;
};

std::string scalar_text(simdjson::dom::element e) {
  if (e.is_string()) return std::string(e.get_string().value_unsafe());
  if (e.is_int64()) return std::to_string(e.get_int64().value_unsafe());
  if (e.is_uint64()) return std::to_string(e.get_uint64().value_unsafe());
  return {};
}

// Reads the error fields of the common envelopes: OpenAI/Azure/Groq/...
// {"error":{"message","type","code"}}, Anthropic {"type":"error","error":{...}},
// Google {"error":{"code","message","status"}}, and {"error":"text"}.
ProviderFields read_provider_fields(std::string_view body) {
  ProviderFields f;
  if (body.empty() || body.size() > (8u << 20)) return f;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) return f;
  if (root.is_array()) {  // Gemini sometimes wraps the status in a list
    simdjson::dom::array arr = root.get_array().value_unsafe();
    if (arr.size() == 0) return f;
    root = arr.at(0).value_unsafe();
  }
  if (!root.is_object()) return f;
  simdjson::dom::element err;
  if (root["error"].get(err) != simdjson::SUCCESS) {
    err = root;  // some servers put message/code at the top level
  }
  if (err.is_string()) {
    f.message = std::string(err.get_string().value_unsafe());
    simdjson::dom::element code;
    if (root["code"].get(code) == simdjson::SUCCESS) f.code = scalar_text(code);
    return f;
  }
  if (!err.is_object()) return f;
  simdjson::dom::element v;
  if (err["message"].get(v) == simdjson::SUCCESS) f.message = scalar_text(v);
  if (err["type"].get(v) == simdjson::SUCCESS) f.type = scalar_text(v);
  if (err["code"].get(v) == simdjson::SUCCESS) f.code = scalar_text(v);
  if (f.type.empty() && err["status"].get(v) == simdjson::SUCCESS) f.type = scalar_text(v);
  return f;
}

bool contains_any(std::string_view haystack, std::initializer_list<std::string_view> needles) {
  for (auto n : needles) if (icontains(haystack, n)) return true;
  return false;
}

bool looks_like_html(std::string_view body) {
  auto trimmed = trim(body.substr(0, 256));
  return istarts_with(trimmed, "<!doctype html") || istarts_with(trimmed, "<html");
}

ErrorCategory category_for(int status, const ProviderFields& f, std::string_view body) {
  const std::string_view code = f.code, type = f.type, msg = f.message;
  if (contains_any(code, {"insufficient_quota", "billing"}) || contains_any(type, {"insufficient_quota"}) ||
      contains_any(msg, {"exceeded your current quota", "credit balance is too low", "billing"})) {
    return ErrorCategory::kQuotaExhausted;
  }
  if (contains_any(code, {"context_length_exceeded"}) ||
      contains_any(msg, {"maximum context length", "context window", "prompt is too long", "too many tokens"})) {
    return ErrorCategory::kContextOverflow;
  }
  if (contains_any(code, {"content_filter", "content_policy"}) || contains_any(msg, {"content management policy"})) {
    return ErrorCategory::kContentFilter;
  }
  if (contains_any(code, {"invalid_api_key"}) || contains_any(type, {"authentication_error"}) ||
      contains_any(msg, {"invalid api key", "incorrect api key"})) {
    return ErrorCategory::kAuth;
  }
  if (contains_any(code, {"model_not_found", "DeploymentNotFound"}) || contains_any(type, {"not_found_error"})) {
    return ErrorCategory::kModelNotFound;
  }
  if (contains_any(type, {"overloaded_error"})) return ErrorCategory::kTransient;
  switch (status) {
    case 401: return ErrorCategory::kAuth;
    case 403: return ErrorCategory::kPermission;
    case 404: return ErrorCategory::kModelNotFound;
    case 429: return ErrorCategory::kRateLimit;
    case 408: case 409: case 425: return ErrorCategory::kTransient;
    case 400: case 405: case 413: case 415: case 422: return ErrorCategory::kBadRequest;
    default: break;
  }
  if (status >= 500 || looks_like_html(body)) return ErrorCategory::kTransient;
  return ErrorCategory::kUnknown;
}

std::optional<milliseconds> parse_seconds(std::string_view text) {
  auto seconds = parse_double(text);
  if (!seconds || *seconds < 0 || *seconds > 1e7) return std::nullopt;
  return milliseconds(static_cast<std::int64_t>(std::ceil(*seconds * 1000)));
}

std::optional<milliseconds> parse_http_date(std::string_view text, std::chrono::system_clock::time_point now) {
  // absl's RFC1123 format wants a numeric zone; HTTP dates say "GMT".
  std::string value(trim(text));
  if (iends_with(value, " GMT")) value.replace(value.size() - 3, 3, "+0000");
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S %z", value, &t, &err)) return std::nullopt;
  const auto delta = absl::ToChronoTime(t) - now;
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(delta));
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

std::optional<milliseconds> requested_delay(const Headers& headers, std::chrono::system_clock::time_point now) {
  if (const auto* v = find_header(headers, "retry-after-ms")) {
    if (auto ms = parse_double(*v); ms && *ms >= 0 && *ms < 1e10) {
      return milliseconds(static_cast<std::int64_t>(std::ceil(*ms)));
    }
  }
  if (const auto* v = find_header(headers, "retry-after")) {
    if (auto s = parse_seconds(*v)) return s;
    if (auto d = parse_http_date(*v, now)) return d;
  }
  for (std::string_view name : {"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"}) {
    if (const auto* v = find_header(headers, name)) {
      if (auto d = parse_go_duration(*v)) return d;
    }
  }
  return std::nullopt;
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
  ProviderFields f = read_provider_fields(body);
  e.category = category_for(http_status, f, body);
  e.provider_code = redact_secrets(f.code);
  e.provider_type = redact_secrets(f.type);
  if (!f.message.empty()) {
    e.message = redact_secrets(f.message);
  } else if (looks_like_html(body)) {
    e.message = fmt::format("HTTP {} with an HTML page (a gateway or proxy answered, not the API)", http_status);
  } else {
    e.message = redact_secrets(body.substr(0, 512));
  }
  e.retry_after = requested_delay(headers, now);
  return e;
}

}  // namespace llmguard::internal
