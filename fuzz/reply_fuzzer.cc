// libFuzzer target: arbitrary bytes as a 2xx body of the OpenAI API, read
// by the long-reply reader and by the DOM path. Beyond crashes and sanitizer
// reports, a bug is: the quick reader taking a body the DOM path reads
// differently (another text, id, model, finish reason or usage), or taking
// one the DOM path finds no answer in. Bodies the DOM parser refuses as
// JSON are exempt from the comparison: the quick reader checks the values it
// skips for structure only, by design.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "json_unescape.h"
#include "providers/wire_api.h"

namespace {

using llmguard::ChatResponse;
using llmguard::Provider;
using llmguard::internal::ReplyShape;
using llmguard::internal::ReportedUsage;

// A long content string around the fuzzed bytes, so that the block
// unescaper sees many blocks: the first byte says how many copies.
std::string body_of(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) return rest;  // the body as it is
  std::string content;
  for (int i = 0; i < 1 + data[0] % 16; ++i) content += rest;
  return R"({"id":"x","model":"m","choices":[{"message":{"content":")" + content +
         R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}})";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body = body_of(data, size);
  const auto& api = llmguard::internal::wire_api(Provider::kOpenAI);
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  ChatResponse quick;
  ReportedUsage quick_usage;
  if (!api.read_long_reply(body, quick, quick_usage)) return 0;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root) != simdjson::SUCCESS) return 0;
  ChatResponse dom;
  ReportedUsage dom_usage;
  if (api.read_reply(root, dom, dom_usage) != ReplyShape::kAnswer) std::abort();
  if (quick.content != dom.content || quick.id != dom.id || quick.model != dom.model ||
      quick.finish_reason != dom.finish_reason || !(quick_usage == dom_usage)) {
    std::abort();
  }
  return 0;
}
