// One wire API — OpenAI's chat completions (and Azure's deployments of it),
// Anthropic's Messages, ... — is the only code that knows its URLs, its auth,
// its request body and the shapes of its replies and streams. registry.cc
// maps each Provider to its WireApi; nothing else switches on Provider, so a
// new API is one file and one registry line.
#ifndef LLMGUARD_SRC_PROVIDERS_WIRE_API_H_
#define LLMGUARD_SRC_PROVIDERS_WIRE_API_H_

#include <simdjson.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmguard/error.h"
#include "llmguard/options.h"
#include "llmguard/runtime.h"
#include "llmguard/types.h"
#include "stream.h"
#include "usage_check.h"

namespace llmguard::internal {

// Members of ChatRequest::extra_body_json, kept as raw JSON text so that they
// are written verbatim after the fields llmguard sets (and replace them).
struct Extras {
  std::vector<std::pair<std::string, std::string>> members;
  bool has(std::string_view key) const {
    for (const auto& [k, v] : members)
      if (k == key) return true;
    return false;
  }
};

// What an API keeps of one target besides its URLs and headers, for
// prepare_attempt (Bedrock: the AWS credentials and region it signs with).
// Made at create(), immutable, shared by the target's attempts.
class TargetState {
 public:
  virtual ~TargetState() = default;
};

// Where a target's requests go, the API's own headers (auth aside), and what
// it keeps for signing each attempt.
struct Endpoint {
  std::string url;                           // plain requests
  std::string stream_url;                    // streamed requests
  Headers headers;                           // e.g. anthropic-version
  std::shared_ptr<const TargetState> state;  // null unless the API signs each attempt
};

// What a 2xx body held, as far as the API's reader could tell.
enum class ReplyShape {
  kAnswer,     // the reply (which may still be a refusal: see WireApi::withheld)
  kNoAnswer,   // well-typed but without the answer (no choices, no content)
  kWrongType,  // a field the reader needs has an unexpected type
};

class WireApi {
 public:
  virtual ~WireApi() = default;

  // The name config files and messages use ("openai", "anthropic", ...).
  virtual std::string_view name() const = 0;

  // Completes `base_url` and `key` where the target left them empty: from
  // the API's environment variables, then its public defaults. A kBadRequest
  // error when the target cannot be reached without more (Azure without its
  // resource endpoint).
  virtual Status fill_defaults(const Target& target, std::string& base_url, std::string& key) const = 0;

  // The URLs and headers of `target`, whose base URL (without trailing
  // slashes) is `root`. `keyed`: the target has a credential (a key or a
  // credential source), whose headers come from credential_headers().
  virtual Endpoint endpoint(const Target& target, std::string_view root, bool keyed) const = 0;

  // The headers that carry credential `key` (not empty), sent first.
  virtual Headers credential_headers(std::string_view key) const = 0;

  // The headers that carry `token` from a credential source. Most APIs take
  // a fetched token where they take a key; Azure takes a static resource key
  // in api-key but its short-lived Entra ID tokens as bearer tokens.
  virtual Headers token_headers(std::string_view token) const { return credential_headers(token); }

  // Environment variables whose values are this API's credentials, masked in
  // every message even when no target names them.
  virtual std::span<const std::string_view> credential_envs() const = 0;

  // Completes one attempt's request (URL, headers and the exact body to be
  // sent) when its credential depends on the body and the time: AWS SigV4.
  // `state` is the target's Endpoint::state (maybe null), `now` the client
  // clock's wall time. An error fails the attempt before anything is sent.
  virtual Status prepare_attempt(const TargetState* /*state*/, HttpRequest& /*request*/,
                                 std::chrono::system_clock::time_point /*now*/) const {
    return ok_status();
  }

  // Appends the request body. The request is valid (codec.cc checked its
  // text and JSON fields); an error is input this API cannot express.
  virtual Status write_body(std::string& out, const ChatRequest& request, std::string_view model, const Extras& extras,
                            bool stream) const = 0;

  // Reads a parsed 2xx body into `reply` and `usage` (as reported).
  virtual ReplyShape read_reply(simdjson::dom::element root, ChatResponse& reply, ReportedUsage& usage) const = 0;

  // A quicker reading of a long 2xx body (`body` readable up to
  // SIMDJSON_PADDING past its end) for APIs whose replies are mostly one long
  // text: true when it read the whole reply into `reply` and `usage`, as
  // read_reply would have; false, with nothing to undo, for anything it
  // leaves to the general path (an error member, tool calls, a refusal, a
  // field of an unexpected type). Replies it reads skip withheld(), so only
  // APIs without one implement it.
  virtual bool read_long_reply(std::string_view /*body*/, ChatResponse& /*reply*/, ReportedUsage& /*usage*/) const {
    return false;
  }

  // A 2xx body whose answer the provider withheld (a safety verdict in a 200
  // reply) as the error the caller gets; nullopt for a real answer.
  virtual std::optional<Error> withheld(simdjson::dom::element /*root*/, const ChatResponse& /*reply*/) const {
    return std::nullopt;
  }

  // A fresh decoder for one streamed attempt's 2xx body.
  virtual std::unique_ptr<StreamDecoder> stream_decoder() const = 0;
};

// The WireApi that speaks `provider`'s API; one instance for the process.
const WireApi& wire_api(Provider provider);

// Every Provider, in declaration order (for parse_provider and help texts).
std::span<const Provider> all_providers();

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_PROVIDERS_WIRE_API_H_
