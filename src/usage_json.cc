#include "usage_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>

#include "text.h"

namespace llmguard::internal {
namespace {

using simdjson::dom::element;

ReportedCount count_at(element parent, std::string_view key) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS) return {};
  return read_reported_count(v);
}

std::optional<element> object_at(element parent, std::string_view key) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS || !v.is_object()) return std::nullopt;
  return v;
}

// Providers that report a cache count both ways send 0 in the one they do
// not use; a non-zero (or unusable) first count wins.
ReportedCount first_nonzero(ReportedCount a, ReportedCount b) {
  return a.present() && a != ReportedCount::of(0) ? a : b.present() ? b : a;
}

// One pass over the members: a keyed lookup per field rescanned them all.
void read_openai_usage(element usage, ReportedUsage& u) {
  simdjson::dom::object members;
  if (usage.get_object().get(members) != simdjson::SUCCESS) return;
  ReportedCount cache_hit, cache_read, cache_creation;
  for (simdjson::dom::key_value_pair m : members) {
    const std::string_view key = m.key;
    if (key == "prompt_tokens") {
      u.prompt = read_reported_count(m.value);
    } else if (key == "completion_tokens") {
      u.completion = read_reported_count(m.value);
    } else if (key == "total_tokens") {
      u.total = read_reported_count(m.value);
    } else if (key == "prompt_tokens_details" && m.value.is_object()) {
      u.cached = count_at(m.value, "cached_tokens");
      u.cache_write = count_at(m.value, "cache_write_tokens");  // OpenRouter
    } else if (key == "completion_tokens_details" && m.value.is_object()) {
      u.reasoning = count_at(m.value, "reasoning_tokens");
    } else if (key == "prompt_cache_hit_tokens") {  // DeepSeek
      cache_hit = read_reported_count(m.value);
    } else if (key == "cache_read_input_tokens") {  // Anthropic's counts, passed through by LiteLLM
      cache_read = read_reported_count(m.value);
    } else if (key == "cache_creation_input_tokens") {
      cache_creation = read_reported_count(m.value);
    }
  }
  u.cached = first_nonzero(u.cached, first_nonzero(cache_hit, cache_read));
  u.cache_write = first_nonzero(u.cache_write, cache_creation);
}

// Gemini: candidatesTokenCount leaves out the thinking tokens, which OpenAI's
// completion_tokens includes; cached content is part of the prompt count.
void read_gemini_usage(element meta, ReportedUsage& u) {
  const ReportedCount thoughts = count_at(meta, "thoughtsTokenCount");
  u.prompt = count_at(meta, "promptTokenCount");
  u.completion = sum_counts({count_at(meta, "candidatesTokenCount"), thoughts});
  u.cached = count_at(meta, "cachedContentTokenCount");
  u.reasoning = thoughts;
  u.total = count_at(meta, "totalTokenCount");
}

// JSON's number grammar; `integral` when there is neither fraction nor exponent.
bool well_formed_number(std::string_view s, bool& integral) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i == n || !is_digit(s[i])) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < n && is_digit(s[i])) ++i;
  }
  integral = true;
  if (i < n && s[i] == '.') {
    integral = false;
    if (++i == n || !is_digit(s[i])) return false;
    while (i < n && is_digit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    integral = false;
    if (++i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i == n || !is_digit(s[i])) return false;
    while (i < n && is_digit(s[i])) ++i;
  }
  return i == n;
}

// Decimal exponent of the literal's leading significant digit, saturated:
// from_chars reports underflow and overflow alike, and only overflow is
// refused by simdjson (1e-999 parses as 0).
std::int64_t leading_exponent(std::string_view s) {
  std::size_t i = s.starts_with('-') ? 1 : 0;
  std::int64_t position = 0;  // of the first significant digit, relative to the point
  bool seen = false;
  std::int64_t int_digits = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    if (!seen && s[i] != '0') seen = true;
    if (seen) ++int_digits;
  }
  if (seen) {
    position = int_digits - 1;
  } else if (i < s.size() && s[i] == '.') {
    std::int64_t k = 0;
    for (++i; i < s.size() && is_digit(s[i]); ++i) {
      ++k;
      if (s[i] != '0') {
        seen = true;
        break;
      }
    }
    position = -k;
  }
  if (!seen) return 0;  // zero, whatever its exponent
  while (i < s.size() && s[i] != 'e' && s[i] != 'E') ++i;
  std::int64_t exponent = 0;
  if (i < s.size()) {
    ++i;
    const bool negative = i < s.size() && s[i] == '-';
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    for (; i < s.size(); ++i) exponent = std::min<std::int64_t>(exponent * 10 + (s[i] - '0'), 1'000'000'000);
    if (negative) exponent = -exponent;
  }
  return position + exponent;
}

bool out_of_range(std::string_view literal) {
  bool integral = false;
  if (!well_formed_number(literal, integral)) return false;  // malformed stays malformed
  const char* first = literal.data();
  const char* last = literal.data() + literal.size();
  if (integral) {
    if (literal.starts_with('-')) {
      std::int64_t v = 0;
      return std::from_chars(first, last, v).ec != std::errc();
    }
    std::uint64_t v = 0;
    return std::from_chars(first, last, v).ec != std::errc();
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(first, last, v);
  if (ec == std::errc::result_out_of_range) return leading_exponent(literal) > 0;
  return ec != std::errc() || !std::isfinite(v);
}

bool number_char(char c) { return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; }

}  // namespace

ReportedCount read_reported_count(element value) {
  switch (value.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
      return {};
    case simdjson::dom::element_type::INT64:
      return ReportedCount::of(value.get_int64().value_unsafe());
    case simdjson::dom::element_type::DOUBLE: {
      const double d = value.get_double().value_unsafe();
      if (!std::isfinite(d)) return ReportedCount::invalid();
      const double rounded = d >= 0 ? std::ceil(d) : std::floor(d);
      // 2^63 is exact in a double; the int64 range is [-2^63, 2^63).
      if (rounded < -9223372036854775808.0 || rounded >= 9223372036854775808.0) return ReportedCount::invalid();
      return ReportedCount::of(static_cast<std::int64_t>(rounded));
    }
    default:  // UINT64 above int64, strings, bools, objects, arrays
      return ReportedCount::invalid();
  }
}

bool read_usage_member(std::string_view key, element value, ReportedUsage& out) {
  const bool openai = key == "usage";
  if ((!openai && key != "usageMetadata") || !value.is_object()) return false;
  ReportedUsage u;
  u.reported = true;
  if (openai) read_openai_usage(value, u);
  else read_gemini_usage(value, u);
  out = u;
  return true;
}

bool read_openai_style_usage(element root, ReportedUsage& out) {
  if (auto usage = object_at(root, "usage")) {
    ReportedUsage u;
    u.reported = true;
    read_openai_usage(*usage, u);
    out = u;
    return true;
  }
  if (auto meta = object_at(root, "usageMetadata")) {
    ReportedUsage u;
    u.reported = true;
    read_gemini_usage(*meta, u);
    out = u;
    return true;
  }
  return false;
}

void read_anthropic_usage(simdjson::dom::object usage, AnthropicUsageParts& parts) {
  for (simdjson::dom::key_value_pair m : usage) {
    const std::string_view key = m.key;
    ReportedCount* slot = key == "input_tokens"                  ? &parts.input
                          : key == "output_tokens"               ? &parts.output
                          : key == "cache_read_input_tokens"     ? &parts.cache_read
                          : key == "cache_creation_input_tokens" ? &parts.cache_write
                                                                 : nullptr;
    if (slot) *slot = read_reported_count(m.value);
  }
}

void read_bedrock_usage(simdjson::dom::object usage, ReportedUsage& out) {
  AnthropicUsageParts parts;
  ReportedCount total;
  for (simdjson::dom::key_value_pair m : usage) {
    const std::string_view key = m.key;
    ReportedCount* slot = key == "inputTokens"             ? &parts.input
                          : key == "outputTokens"          ? &parts.output
                          : key == "cacheReadInputTokens"  ? &parts.cache_read
                          : key == "cacheWriteInputTokens" ? &parts.cache_write
                          : key == "totalTokens"           ? &total
                                                           : nullptr;
    if (slot) *slot = read_reported_count(m.value);
  }
  out = {.reported = true,
         .prompt = parts.prompt(),
         .completion = parts.output,
         .cached = parts.cache_read,
         .cache_write = parts.cache_write,
         .total = total};
}

std::string quote_out_of_range_numbers(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 16);
  bool in_string = false;
  for (std::size_t i = 0; i < json.size();) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\' && i + 1 < json.size()) {
        out.append(json.substr(i, 2));
        i += 2;
        continue;
      }
      if (c == '"') in_string = false;
      out += c;
      ++i;
    } else if (c == '"') {
      in_string = true;
      out += c;
      ++i;
    } else if (c == '-' || is_digit(c)) {
      std::size_t end = i + 1;
      while (end < json.size() && number_char(json[end])) ++end;
      const std::string_view literal = json.substr(i, end - i);
      const bool quote = out_of_range(literal);
      if (quote) out += '"';
      out.append(literal);
      if (quote) out += '"';
      i = end;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

simdjson::error_code parse_allowing_out_of_range_numbers(simdjson::dom::parser& parser, const char* data,
                                                         std::size_t size, bool realloc_if_needed, element& root) {
  if (size == 0) return simdjson::EMPTY;  // and `data` may be null, which simdjson would copy from
  const simdjson::error_code ec = parser.parse(data, size, realloc_if_needed).get(root);
  if (ec != simdjson::NUMBER_ERROR) return ec;
  const std::string quoted = quote_out_of_range_numbers(std::string_view(data, size));
  if (quoted.size() == size) return ec;  // no literal was out of range: some other bad number
  // The DOM keeps its own copy of every string: `root` outlives `quoted`.
  return parser.parse(quoted).get(root) == simdjson::SUCCESS ? simdjson::SUCCESS : ec;
}

}  // namespace llmguard::internal
