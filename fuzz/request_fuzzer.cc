// libFuzzer target: arbitrary bytes as an OpenAI-style request file
// (`llmguard chat --request`). What parses must also turn into every wire
// API's body, or be refused with a typed error: any crash, sanitizer report,
// hang or runaway allocation is a bug, and so is a body that is not JSON.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "codec.h"
#include "providers/wire_api.h"
#include "request_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = llmguard::internal::parse_openai_request(text);
  if (!parsed.ok()) {
    if (parsed.error().category != llmguard::ErrorCategory::kBadRequest) std::abort();
    return 0;
  }
  if (parsed->request.messages.empty()) std::abort();  // the parser promises at least one
  for (llmguard::Provider provider : llmguard::internal::all_providers()) {
    for (bool stream : {false, true}) {
      auto body = llmguard::internal::build_request_body(provider, parsed->request, "m", stream, 4096);
      if (!body.ok()) continue;  // input this API cannot express, refused with a typed error
      simdjson::dom::parser parser;
      simdjson::dom::element root;
      if (parser.parse(*body).get(root) != simdjson::SUCCESS) std::abort();
    }
  }
  return 0;
}
