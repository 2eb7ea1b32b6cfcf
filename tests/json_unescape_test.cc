// The block unescaper against simdjson's own string parsing, and the long
// reply reader against the DOM path it stands in for.
#include "json_unescape.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <random>
#include <string>

#include "codec.h"
#include "providers/wire_api.h"

namespace llmguard::internal {
namespace {

// What simdjson makes of `quoted` (a JSON string literal), or nullopt when it refuses it.
std::optional<std::string> simdjson_unescaped(const std::string& quoted) {
  thread_local simdjson::dom::parser parser;
  std::string_view s;
  if (parser.parse(quoted).get_string().get(s) != simdjson::SUCCESS) return std::nullopt;
  return std::string(s);
}

// append_unescaped over `quoted` as it sits in a buffer (after its opening quote).
std::optional<std::string> block_unescaped(const std::string& quoted, std::size_t* consumed = nullptr) {
  std::string out = "kept:";
  const char* end = quoted.data() + quoted.size();
  const char* closing = append_unescaped(quoted.data() + 1, end, out);
  if (!closing) {
    CHECK(out == "kept:");  // nothing appended on refusal
    return std::nullopt;
  }
  CHECK(*closing == '"');
  if (consumed) *consumed = static_cast<std::size_t>(closing - quoted.data()) + 1;
  return out.substr(5);
}

#define REQUIRE_BLOCK_UNESCAPE()                                                    \
  if (!block_unescape_available()) {                                                \
    MESSAGE("this CPU has no AVX-512 VBMI2: the block unescaper is not used here"); \
    return;                                                                         \
  }

TEST_CASE("Escapes are translated and backslash runs of every length split right, across block edges") {
  REQUIRE_BLOCK_UNESCAPE();
  const std::string pieces[] = {"\\n", "\\t", "\\r", "\\b", "\\f", "\\\"",    "\\\\",
                                "\\/", "a",   "Ü",   "—",   " ",   "\\\\\\\""};
  std::mt19937 rng(20261205);
  for (int round = 0; round < 4000; ++round) {
    std::string quoted = "\"";
    const int n = static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i) quoted += pieces[rng() % std::size(pieces)];
    quoted += "\"";
    const std::string tail = round % 2 ? ",\"x\":1}" : "";  // what follows the string in a document
    const std::string buffer = quoted + tail;
    CAPTURE(quoted);
    std::size_t consumed = 0;
    const auto got = block_unescaped(buffer, &consumed);
    REQUIRE(got.has_value());
    CHECK(*got == simdjson_unescaped(quoted).value());
    CHECK(consumed == quoted.size());
  }
}

TEST_CASE("Runs of backslashes that end exactly at a block edge carry their state into the next block") {
  REQUIRE_BLOCK_UNESCAPE();
  for (std::size_t lead = 55; lead < 70; ++lead) {
    for (std::size_t run = 1; run <= 6; ++run) {
      // A run of `run` backslashes starting at byte `lead` of the string, then a quote:
      // an odd run escapes the quote, so the string goes on to the next one.
      const std::string quoted = "\"" + std::string(lead, 'x') + std::string(run, '\\') + "\"y\"";
      CAPTURE(lead);
      CAPTURE(run);
      const auto expected = simdjson_unescaped(run % 2 ? quoted : quoted.substr(0, 1 + lead + run + 1));
      const auto got = block_unescaped(quoted);
      REQUIRE(got.has_value());
      CHECK(*got == expected.value());
    }
  }
}

TEST_CASE("Strings simdjson refuses, unterminated ones and \\u escapes are refused with nothing appended") {
  REQUIRE_BLOCK_UNESCAPE();
  for (const std::string& bad :
       {std::string("\"no end"), std::string("\"bad \\x escape\""), std::string("\"raw \n newline\""),
        std::string("\"tab\tinside\""), std::string(100, 'a').insert(0, "\"") + "\\",  // ends in an escape
        std::string("\"\\u00e9 is left to the general parser\"")}) {
    CAPTURE(bad);
    CHECK_FALSE(block_unescaped(bad).has_value());
  }
  // A quote past `end` is not seen: the string is unterminated within the bytes given.
  const std::string text = "\"" + std::string(70, 'a') + "\"";
  std::string out;
  CHECK(append_unescaped(text.data() + 1, text.data() + text.size() - 1, out) == nullptr);
  CHECK(out.empty());
}

std::string completion(std::string_view content_json, std::string_view extra_message_members = "",
                       std::string_view extra_root_members = "") {
  return std::string(R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",)") +
         std::string(extra_root_members) + R"("choices":[{"index":0,"message":{"role":"assistant","content":)" +
         std::string(content_json) + std::string(extra_message_members) +
         R"(},"logprobs":null,"finish_reason":"stop"}],)"
         R"("usage":{"prompt_tokens":12,"completion_tokens":3400,"total_tokens":3412}})";
}

std::string long_content_json() {
  std::string content = "\"";
  for (int i = 0; i < 600; ++i) content += "line \\\"" + std::to_string(i) + "\\\" of code:\\n\\tx = y \\\\ 2;\\n";
  return content + "\"";
}

TEST_CASE("The long reply reader and the DOM path read a long completion the same") {
  REQUIRE_BLOCK_UNESCAPE();
  const std::string body = completion(long_content_json());
  REQUIRE(body.size() > 16384);
  const WireApi& api = wire_api(Provider::kOpenAI);
  std::string padded = body;
  padded.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  ChatResponse quick;
  ReportedUsage quick_usage;
  REQUIRE(api.read_long_reply(padded, quick, quick_usage));

  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  REQUIRE(parser.parse(body).get(root) == simdjson::SUCCESS);
  ChatResponse dom;
  ReportedUsage dom_usage;
  REQUIRE(api.read_reply(root, dom, dom_usage) == ReplyShape::kAnswer);
  CHECK(quick.content == dom.content);
  CHECK(quick.content.find("line \"599\" of code:\n\tx = y \\ 2;\n") != std::string::npos);
  CHECK(quick.id == "chatcmpl-1");
  CHECK(quick.model == "gpt-4o-mini");
  CHECK(quick.finish_reason == "stop");
  CHECK(quick_usage.reported);
  CHECK(quick_usage == dom_usage);
  CHECK(quick_usage.completion.value == 3400);

  auto whole = parse_response_body(Provider::kOpenAI, 200, {}, body);
  REQUIRE(whole.ok());
  CHECK(whole->content == dom.content);
  CHECK(whole->finish == FinishReason::kStop);
  CHECK(whole->usage.completion_tokens == 3400);
  CHECK_FALSE(whole->usage.estimated);
}

TEST_CASE("Long replies the quick reader does not expect are left to the DOM path, which still judges them") {
  REQUIRE_BLOCK_UNESCAPE();
  const WireApi& api = wire_api(Provider::kOpenAI);
  const std::string content = long_content_json();
  const std::string declined[] = {
      completion(content, R"(,"refusal":"I can't help with that")"),
      completion(content, R"(,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}])"),
      completion(content, "", R"("error":{"message":"upstream failed"},)"),
      completion(content, "", R"("id":"twice",)"),
      completion("\"caf\\u00e9 " + content.substr(1)),
      completion("42"),
      completion(content).substr(0, 9000),  // cut short
      completion(content) + " trailing",
  };
  for (const std::string& body : declined) {
    CAPTURE(body.substr(0, 200));
    std::string padded = body;
    padded.reserve(body.size() + simdjson::SIMDJSON_PADDING);
    ChatResponse reply;
    ReportedUsage usage;
    CHECK_FALSE(api.read_long_reply(padded, reply, usage));
    CHECK(reply.content.empty());
  }
  // The DOM path then gives each its usual answer.
  auto refused = parse_response_body(Provider::kOpenAI, 200, {}, declined[0]);
  REQUIRE(refused.ok());
  CHECK(refused->refusal == "I can't help with that");
  auto tools = parse_response_body(Provider::kOpenAI, 200, {}, declined[1]);
  REQUIRE(tools.ok());
  CHECK(tools->tool_calls.size() == 1);
  auto unicode = parse_response_body(Provider::kOpenAI, 200, {}, declined[4]);
  REQUIRE(unicode.ok());
  CHECK(unicode->content.starts_with("caf\xC3\xA9 "));
  auto cut = parse_response_body(Provider::kOpenAI, 200, {}, declined[6]);
  REQUIRE_FALSE(cut.ok());
  CHECK(cut.error().category == ErrorCategory::kTransient);
  CHECK_FALSE(parse_response_body(Provider::kOpenAI, 200, {}, declined[7]).ok());
}

}  // namespace
}  // namespace llmguard::internal
