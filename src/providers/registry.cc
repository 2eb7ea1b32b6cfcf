// The one place that maps a Provider to the code that speaks its API.
#include "providers/wire_api.h"

namespace llmguard::internal {

// Defined in the API's own file.
const WireApi& openai_wire_api();
const WireApi& azure_wire_api();
const WireApi& anthropic_wire_api();
const WireApi& gemini_wire_api();
const WireApi& vertex_wire_api();
const WireApi& bedrock_wire_api();

const WireApi& wire_api(Provider provider) {
  switch (provider) {
    case Provider::kOpenAI:
      return openai_wire_api();
    case Provider::kAzure:
      return azure_wire_api();
    case Provider::kAnthropic:
      return anthropic_wire_api();
    case Provider::kGemini:
      return gemini_wire_api();
    case Provider::kVertex:
      return vertex_wire_api();
    case Provider::kBedrock:
      return bedrock_wire_api();
  }
  return openai_wire_api();  // unreachable for a valid enumerator
}

std::span<const Provider> all_providers() {
  static constexpr Provider kAll[] = {Provider::kOpenAI, Provider::kAzure,  Provider::kAnthropic,
                                      Provider::kGemini, Provider::kVertex, Provider::kBedrock};
  return kAll;
}

}  // namespace llmguard::internal
