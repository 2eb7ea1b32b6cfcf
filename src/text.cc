#include "text.h"

#include <cstdint>
#include <cstring>

namespace llmguard::internal {

bool iends_with(std::string_view text, std::string_view suffix) noexcept {
  return text.size() >= suffix.size() && iequals(text.substr(text.size() - suffix.size()), suffix);
}

bool icontains(std::string_view haystack, std::string_view needle) noexcept {
  if (needle.empty()) return true;
  if (needle.size() > haystack.size()) return false;
  const char first = ascii_lower(needle[0]);
  const std::size_t last_start = haystack.size() - needle.size();
  for (std::size_t i = 0; i <= last_start; ++i) {
    if (ascii_lower(haystack[i]) != first) continue;
    std::size_t k = 1;
    while (k < needle.size() && ascii_lower(haystack[i + k]) == ascii_lower(needle[k])) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  ascii_lower_in_place(out.data(), out.size());
  return out;
}

void ascii_lower_in_place(char* text, std::size_t size) noexcept {
  constexpr std::uint64_t kEach = 0x0101010101010101;
  constexpr std::uint64_t kHigh = 0x80 * kEach;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text + i, 8);
    // Per byte, with the high bit cleared so that no sum carries into the
    // next byte: adding 0x80 - 'A' sets the high bit from 'A' up, adding
    // 0x80 - 'Z' - 1 sets it past 'Z'. A byte that had its own high bit set
    // is not ASCII and stays as it is.
    const std::uint64_t low7 = word & ~kHigh;
    const std::uint64_t from_a = low7 + (0x80 - 'A') * kEach;
    const std::uint64_t past_z = low7 + (0x80 - 'Z' - 1) * kEach;
    const std::uint64_t upper = from_a & ~past_z & ~word & kHigh;
    word |= upper >> 2;  // 0x80 >> 2 is 0x20, the case bit
    std::memcpy(text + i, &word, 8);
  }
  for (; i < size; ++i) text[i] = ascii_lower(text[i]);
}

std::optional<double> parse_double(std::string_view text) noexcept {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  if (text.front() == '+') text.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<long long> parse_int(std::string_view text) noexcept {
  text = trim(text);
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace llmguard::internal
