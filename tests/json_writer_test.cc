#include "json_writer.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>

namespace llmguard::internal {
namespace {

std::string as_json_string(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

// Round-trips through simdjson: what we write must parse back to the input.
std::string parse_back(const std::string& json) {
  simdjson::dom::parser parser;
  std::string_view s;
  REQUIRE(parser.parse(json).get_string().get(s) == simdjson::SUCCESS);
  return std::string(s);
}

TEST_CASE("Strings escape quotes, backslashes and every control character") {
  CHECK(as_json_string("plain") == R"("plain")");
  CHECK(as_json_string("say \"hi\"") == R"("say \"hi\"")");
  CHECK(as_json_string("a\\b") == R"("a\\b")");
  CHECK(as_json_string("l1\nl2\r\t") == R"("l1\nl2\r\t")");
  CHECK(as_json_string(std::string_view("\x00\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  CHECK(as_json_string("\b\f") == R"("\b\f")");
  CHECK(as_json_string("\x7f") == "\"\x7f\"");  // DEL needs no escape in JSON
}

TEST_CASE("Non-ASCII UTF-8 is written as is and round-trips") {
  const std::string text = "héllo wörld — 日本語 🎉";
  CHECK(as_json_string(text) == "\"" + text + "\"");
  CHECK(parse_back(as_json_string(text)) == text);
}

TEST_CASE("Every byte value below 0x80 round-trips through the escaper") {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  CHECK(parse_back(as_json_string(all)) == all);
}

TEST_CASE("Invalid UTF-8 is located at its first bad byte") {
  CHECK_FALSE(find_invalid_utf8("valid ü 🎉").has_value());
  CHECK(find_invalid_utf8("ab\xff").value() == 2);
  CHECK(find_invalid_utf8("ok\xc3").value() == 2);            // truncated sequence
  CHECK(find_invalid_utf8("x\xc0\xaf").value() == 1);         // overlong '/'
  CHECK(find_invalid_utf8("\xed\xa0\x80").value() == 0);      // UTF-16 surrogate
  CHECK(find_invalid_utf8("\xf4\x90\x80\x80").value() == 0);  // above U+10FFFF
  CHECK(find_invalid_utf8("abc\xe2\x82").value() == 3);
}

TEST_CASE("The writer places commas and keys correctly in nested structures") {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("a").number(std::int64_t{1}).key("b").begin_array();
  w.number(std::int64_t{2}).begin_object().key("c").null().end_object().string("d").end_array();
  w.key("e").begin_object().end_object().key("f").boolean(true).key("g").number(0.5).end_object();
  CHECK(out == R"({"a":1,"b":[2,{"c":null},"d"],"e":{},"f":true,"g":0.5})");
}

TEST_CASE("Non-finite doubles become null instead of invalid JSON") {
  std::string out;
  JsonWriter w(out);
  w.begin_array().number(std::numeric_limits<double>::infinity()).number(std::nan("")).end_array();
  CHECK(out == "[null,null]");
}

TEST_CASE("validate_json names the field and rejects malformed JSON") {
  CHECK(validate_json(R"({"type":"object"})", "x").ok());
  auto bad = validate_json(R"({"type":)", "tools[0].parameters_json");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().category == ErrorCategory::kBadRequest);
  CHECK(bad.error().message.find("tools[0].parameters_json") != std::string::npos);
}

}  // namespace
}  // namespace llmguard::internal
