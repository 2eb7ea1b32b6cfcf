// ASCII text helpers over std::string_view. (Debian's Abseil is built with
// its own absl::string_view, so its string functions do not take ours.)
#ifndef LLMGUARD_SRC_TEXT_H_
#define LLMGUARD_SRC_TEXT_H_

#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

namespace llmguard::internal {

constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_alnum(char c) noexcept { return is_digit(c) || is_alpha(c); }

// Inline: header lookups and lead matching call these per byte on hot paths.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}
constexpr bool istarts_with(std::string_view text, std::string_view prefix) noexcept {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}
bool iends_with(std::string_view text, std::string_view suffix) noexcept;
// Case-insensitive substring search; `needle` is expected in lower case.
bool icontains(std::string_view haystack, std::string_view needle) noexcept;
constexpr std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}
std::string to_lower(std::string_view text);
// Lower-cases ASCII letters in place, eight bytes at a time; other bytes
// (UTF-8 included) are left alone. Header names go through this per reply.
void ascii_lower_in_place(char* text, std::size_t size) noexcept;

// Strict decimal number parsing of the whole (trimmed) text; nullopt for
// anything else, including NaN, infinities and trailing garbage.
std::optional<double> parse_double(std::string_view text) noexcept;
std::optional<long long> parse_int(std::string_view text) noexcept;

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_TEXT_H_
