// The ASCII helpers that header handling and matching run per byte.
#include "text.h"

#include <doctest/doctest.h>

#include <string>

namespace llmguard::internal {
namespace {

// The byte-at-a-time definition the word-at-a-time one must agree with.
std::string lowered_bytewise(std::string text) {
  for (char& c : text) c = ascii_lower(c);
  return text;
}

TEST_CASE("ascii_lower_in_place lower-cases A-Z and nothing else, for every byte value") {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  // Every byte at every position of an eight-byte word, and the tail.
  for (std::size_t shift = 0; shift < 8; ++shift) {
    std::string text = std::string(shift, 'Q') + all;
    const std::string expected = lowered_bytewise(text);
    ascii_lower_in_place(text.data(), text.size());
    CHECK(text == expected);
  }
}

TEST_CASE("ascii_lower_in_place keeps UTF-8 and the bytes around the letters") {
  std::string text = "X-RateLimit-Reset-Tokens: \xC3\x89T\xC3\xA9 @[`{ AZaz";
  ascii_lower_in_place(text.data(), text.size());
  CHECK(text == "x-ratelimit-reset-tokens: \xC3\x89t\xC3\xA9 @[`{ azaz");
  std::string empty;
  ascii_lower_in_place(empty.data(), empty.size());
  CHECK(empty.empty());
}

TEST_CASE("to_lower and iequals agree") {
  CHECK(to_lower("Content-Type") == "content-type");
  CHECK(iequals(to_lower("ANTHROPIC-RATELIMIT-REQUESTS-RESET"), "anthropic-ratelimit-requests-reset"));
  CHECK_FALSE(iequals("content-type", "content-typf"));
}

}  // namespace
}  // namespace llmguard::internal
