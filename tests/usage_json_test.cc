// Reading usage counts as sent, and parsing documents whose numbers
// simdjson cannot hold.
#include "usage_json.h"

#include <doctest/doctest.h>

#include <limits>
#include <string>

namespace llmguard::internal {
namespace {

ReportedCount count_in(const std::string& value_json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const std::string doc = R"({"n":)" + value_json + "}";
  REQUIRE(parse_allowing_out_of_range_numbers(parser, doc.data(), doc.size(), true, root) == simdjson::SUCCESS);
  return read_reported_count(root["n"].value_unsafe());
}

TEST_CASE("Counts are read as sent: negatives kept, doubles rounded away from zero, the rest invalid") {
  CHECK(count_in("12") == ReportedCount::of(12));
  CHECK(count_in("-5") == ReportedCount::of(-5));
  CHECK(count_in("9223372036854775807") == ReportedCount::of(std::numeric_limits<std::int64_t>::max()));
  CHECK(count_in("-9223372036854775808") == ReportedCount::of(std::numeric_limits<std::int64_t>::min()));
  CHECK(count_in("12.0") == ReportedCount::of(12));
  CHECK(count_in("12.5") == ReportedCount::of(13));
  CHECK(count_in("1e3") == ReportedCount::of(1000));
  CHECK(count_in("-0.5") == ReportedCount::of(-1));
  CHECK(count_in("1e-999") == ReportedCount::of(0));
  CHECK(count_in("null") == ReportedCount{});
  CHECK(count_in("18446744073709551615") == ReportedCount::invalid());  // uint64, beyond int64
  CHECK(count_in("9.3e18") == ReportedCount::invalid());
  CHECK(count_in("1e300") == ReportedCount::invalid());
  CHECK(count_in("1e999") == ReportedCount::invalid());
  CHECK(count_in("123456789012345678901234567890") == ReportedCount::invalid());
  CHECK(count_in("-123456789012345678901234567890") == ReportedCount::invalid());
  CHECK(count_in(R"("12")") == ReportedCount::invalid());
  CHECK(count_in("true") == ReportedCount::invalid());
  CHECK(count_in("{}") == ReportedCount::invalid());
}

TEST_CASE("Only well-formed out-of-range number literals outside strings are quoted") {
  CHECK(quote_out_of_range_numbers(R"({"a":1e999,"b":[12,-1E+400],"c":"1e999"})") ==
        R"({"a":"1e999","b":[12,"-1E+400"],"c":"1e999"})");
  CHECK(quote_out_of_range_numbers(R"({"a":123456789012345678901234567890})") ==
        R"({"a":"123456789012345678901234567890"})");
  CHECK(quote_out_of_range_numbers(R"({"s":"say \"9e999\" 5","n":1.5e3,"z":0e999999})") ==
        R"({"s":"say \"9e999\" 5","n":1.5e3,"z":0e999999})");
  CHECK(quote_out_of_range_numbers(R"({"bad":1e,"neg":--1,"u":1e-999})") == R"({"bad":1e,"neg":--1,"u":1e-999})");
}

TEST_CASE("A document with an out-of-range number parses; a truncated or otherwise bad one still fails") {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const std::string ok = R"({"text":"1e999 stays text","usage":{"prompt_tokens":1e999,"completion_tokens":3}})";
  REQUIRE(parse_allowing_out_of_range_numbers(parser, ok.data(), ok.size(), true, root) == simdjson::SUCCESS);
  CHECK(root["text"].get_string().value() == "1e999 stays text");
  for (std::size_t cut = 1; cut < ok.size(); ++cut) {
    const std::string part = ok.substr(0, cut);
    CAPTURE(part);
    CHECK(parse_allowing_out_of_range_numbers(parser, part.data(), part.size(), true, root) != simdjson::SUCCESS);
  }
  const std::string bad = R"({"a":1e})";
  CHECK(parse_allowing_out_of_range_numbers(parser, bad.data(), bad.size(), true, root) == simdjson::NUMBER_ERROR);
}

ReportedUsage openai_usage(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  REQUIRE(parse_allowing_out_of_range_numbers(parser, body.data(), body.size(), true, root) == simdjson::SUCCESS);
  ReportedUsage u;
  read_openai_style_usage(root, u);
  return u;
}

TEST_CASE("OpenAI-style usage is read faithfully, hostile values included") {
  ReportedUsage u = openai_usage(R"({"usage":{"prompt_tokens":-5,"completion_tokens":12.5,"total_tokens":0,
      "prompt_tokens_details":{"cached_tokens":1e999},"completion_tokens_details":{"reasoning_tokens":"x"}}})");
  CHECK(u.reported);
  CHECK(u.prompt == ReportedCount::of(-5));
  CHECK(u.completion == ReportedCount::of(13));
  CHECK(u.total == ReportedCount::of(0));
  CHECK(u.cached == ReportedCount::invalid());
  CHECK(u.reasoning == ReportedCount::invalid());
  CHECK_FALSE(openai_usage(R"({"usage":null})").reported);
  CHECK_FALSE(openai_usage(R"({"id":"x"})").reported);
  CHECK_FALSE(openai_usage(R"({"usage":"lots"})").reported);
  // Gemini: a negative part of the completion is not hidden by the other part.
  u = openai_usage(R"({"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":100,"thoughtsTokenCount":-200}})");
  CHECK(u.completion.value < 0);
}

}  // namespace
}  // namespace llmguard::internal
