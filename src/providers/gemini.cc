// Gemini's own API (generateContent / streamGenerateContent), at Google AI
// Studio with an API key and on Vertex AI with a bearer token. It carries what
// Gemini's OpenAI-compatible shim drops: safety verdicts in 200 replies,
// thinking-token counts, and google.rpc.Status details (RetryInfo,
// QuotaFailure) in its errors.
#include <fmt/format.h>
#include <simdjson.h>

#include "classify.h"
#include "json_writer.h"
#include "providers/wire.h"
#include "providers/wire_api.h"
#include "text.h"
#include "usage_json.h"

namespace llmguard::internal {
namespace {

using simdjson::dom::element;

// Finish and block reasons that mean a safety system withheld or cut the
// reply: the call fails with content_filter, the provider's reason kept.
bool is_safety_verdict(std::string_view reason) {
  static constexpr std::string_view kVerdicts[] = {"SAFETY", "RECITATION",   "PROHIBITED_CONTENT",      "BLOCKLIST",
                                                   "SPII",   "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"};
  for (std::string_view v : kVerdicts) {
    if (reason == v) return true;
  }
  return false;
}

Error safety_error(std::string_view what, std::string_view reason) {
  Error e = make_error(ErrorCategory::kContentFilter, fmt::format("Gemini withheld the reply: {} {}", what, reason));
  e.provider_code = std::string(reason);
  e.hint = hint_for(e);
  return e;
}

// The function a tool result answers, from the assistant turn that called it
// (Gemini matches results to calls by name, not id).
std::string_view called_function(const std::vector<Message>& messages, std::size_t result_index) {
  const std::string& id = messages[result_index].tool_call_id;
  for (std::size_t i = result_index; i-- > 0;) {
    for (const ToolCall& call : messages[i].tool_calls) {
      if (call.id == id) return call.name;
    }
  }
  return {};
}

// A tool result's `response` must be a JSON object: an object is sent as
// it is, anything else is wrapped ({"result": ...}, or {"error": ...} for a
// failed tool).
void write_function_response(JsonWriter& w, const Message& result) {
  const std::string_view text = trim(result.content);
  const bool is_object = text.starts_with('{') && validate_json(text, "").ok();
  w.key("response");
  if (is_object && !result.is_error) {
    w.raw(text);
  } else {
    w.begin_object().key(result.is_error ? "error" : "result").string(result.content).end_object();
  }
}

Status write_contents(JsonWriter& w, const std::vector<Message>& messages) {
  w.key("contents").begin_array();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == Role::kSystem) continue;
    if (m.role == Role::kTool) {
      // Parallel calls' results go back together, one part each, in one turn.
      w.begin_object().key("role").string("user").key("parts").begin_array();
      for (; i < messages.size() && messages[i].role == Role::kTool; ++i) {
        const std::string_view name = called_function(messages, i);
        if (name.empty()) {
          return Status(make_error(
              ErrorCategory::kBadRequest,
              fmt::format("messages[{}]: tool result for call \"{}\", which no earlier assistant turn made (Gemini "
                          "needs the function's name)",
                          i, messages[i].tool_call_id)));
        }
        w.begin_object().key("functionResponse").begin_object().key("name").string(name);
        write_function_response(w, messages[i]);
        w.end_object().end_object();
      }
      --i;  // the loop's ++i steps past the last result
      w.end_array().end_object();
      continue;
    }
    w.begin_object().key("role").string(m.role == Role::kAssistant ? "model" : "user").key("parts").begin_array();
    if (!m.content.empty() || m.tool_calls.empty()) w.begin_object().key("text").string(m.content).end_object();
    for (std::size_t j = 0; j < m.tool_calls.size(); ++j) {
      const ToolCall& c = m.tool_calls[j];
      const std::string_view args = c.arguments_json.empty() ? std::string_view("{}") : c.arguments_json;
      if (auto s = validate_json(args, fmt::format("messages[{}].tool_calls[{}].arguments_json", i, j)); !s.ok()) {
        return s;
      }
      w.begin_object().key("functionCall").begin_object().key("name").string(c.name).key("args").raw(args);
      w.end_object().end_object();
    }
    w.end_array().end_object();
  }
  w.end_array();
  return ok_status();
}

void write_tool_config(JsonWriter& w, const ToolChoice& choice) {
  w.key("toolConfig").begin_object().key("functionCallingConfig").begin_object().key("mode");
  switch (choice.mode) {
    case ToolChoice::Mode::kAuto:
      w.string("AUTO");
      break;
    case ToolChoice::Mode::kNone:
      w.string("NONE");
      break;
    case ToolChoice::Mode::kRequired:
      w.string("ANY");
      break;
    case ToolChoice::Mode::kFunction:
      w.string("ANY").key("allowedFunctionNames").begin_array().string(choice.function_name).end_array();
      break;
  }
  w.end_object().end_object();
}

Status write_generate_content(std::string& out, const ChatRequest& request, const Extras& extras) {
  JsonWriter w(out);
  w.begin_object();
  std::string system;
  for (const Message& m : request.messages) {
    if (m.role != Role::kSystem) continue;
    if (!system.empty()) system += "\n\n";
    system += m.content;
  }
  if (!system.empty() && !extras.has("systemInstruction")) {
    w.key("systemInstruction").begin_object().key("parts").begin_array();
    w.begin_object().key("text").string(system).end_object().end_array().end_object();
  }
  if (auto written = write_contents(w, request.messages); !written.ok()) return written;
  if (!request.tools.empty() && !extras.has("tools")) {
    w.key("tools").begin_array().begin_object().key("functionDeclarations").begin_array();
    for (const Tool& t : request.tools) {
      w.begin_object().key("name").string(t.name);
      if (!t.description.empty()) w.key("description").string(t.description);
      w.key("parameters").raw(t.parameters_json).end_object();
    }
    w.end_array().end_object().end_array();
  }
  if (request.tool_choice && !extras.has("toolConfig")) write_tool_config(w, *request.tool_choice);
  const bool json_reply =
      !request.response_format_json.empty() && request.response_format_json.find("\"text\"") == std::string::npos;
  if (!extras.has("generationConfig") &&
      (request.temperature || request.top_p || request.max_tokens || !request.stop.empty() || json_reply)) {
    w.key("generationConfig").begin_object();
    if (request.temperature) w.key("temperature").number(*request.temperature);
    if (request.top_p) w.key("topP").number(*request.top_p);
    if (request.max_tokens) w.key("maxOutputTokens").number(*request.max_tokens);
    if (!request.stop.empty()) {
      w.key("stopSequences").begin_array();
      for (const auto& s : request.stop) w.string(s);
      w.end_array();
    }
    if (json_reply) w.key("responseMimeType").string("application/json");
    w.end_object();
  }
  for (const auto& [k, v] : extras.members) w.key(k).raw(v);
  w.end_object();
  return ok_status();
}

// Reads one candidate's parts: text (thoughts left out: they are not the
// answer) and function calls, which carry whole arguments.
template <typename OnText, typename OnCall>
bool read_parts(element candidate, OnText&& on_text, OnCall&& on_call) {
  element content, parts_value;
  if (candidate["content"].get(content) != simdjson::SUCCESS || content.is_null()) return true;
  if (content["parts"].get(parts_value) != simdjson::SUCCESS || parts_value.is_null()) return true;
  simdjson::dom::array parts;
  if (parts_value.get_array().get(parts) != simdjson::SUCCESS) return false;
  for (element part : parts) {
    if (!part.is_object()) return false;
    bool thought = false;
    if (part["thought"].get_bool().get(thought) == simdjson::SUCCESS && thought) continue;
    std::string_view text;
    if (part["text"].get_string().get(text) == simdjson::SUCCESS) on_text(text);
    element call;
    if (part["functionCall"].get(call) == simdjson::SUCCESS && call.is_object()) {
      element args;
      std::string arguments =
          call["args"].get(args) == simdjson::SUCCESS && !args.is_null() ? simdjson::minify(args) : "{}";
      on_call(text_of(call, "id"), text_of(call, "name"), std::move(arguments));
    }
  }
  return true;
}

// Gemini gives a call no id unless the model does: one is made up, unique
// within the reply, for the caller to answer it by.
std::string call_id(std::string_view given, std::size_t index) {
  return given.empty() ? fmt::format("call_{}", index) : std::string(given);
}

class GeminiStreamDecoder final : public SseStreamDecoder {
 protected:
  std::optional<Error> on_event(const SseEvent& event, const Emit& emit, int http_status,
                                const Headers& headers) override;
  ReportedUsage final_usage() override { return usage_; }

 private:
  ReportedUsage usage_;
};

std::optional<Error> GeminiStreamDecoder::on_event(const SseEvent& event, const Emit& emit, int http_status,
                                                   const Headers& headers) {
  const std::string_view data = event.data;
  thread_local simdjson::dom::parser parser;
  element root;
  if (parse_allowing_out_of_range_numbers(parser, data.data(), data.size(), true, root) != simdjson::SUCCESS ||
      !root.is_object()) {
    return malformed_stream("an event's data is not a JSON object");
  }
  element error;
  if (root["error"].get(error) == simdjson::SUCCESS && !error.is_null()) {
    return classify_response(http_status, headers, data);
  }
  if (read_openai_style_usage(root, usage_)) mark_usage_seen();
  if (auto id = text_of(root, "responseId"); !id.empty() && id != reply_.id) reply_.id.assign(id);
  if (auto model = text_of(root, "modelVersion"); !model.empty() && model != reply_.model) reply_.model.assign(model);
  element feedback;
  if (root["promptFeedback"].get(feedback) == simdjson::SUCCESS) {
    if (auto reason = text_of(feedback, "blockReason"); !reason.empty()) {
      Error e = safety_error("the prompt was blocked:", reason);
      e.http_status = http_status;
      return e;
    }
  }
  simdjson::dom::array candidates;
  if (root["candidates"].get_array().get(candidates) != simdjson::SUCCESS || candidates.size() == 0) {
    return std::nullopt;
  }
  element candidate = candidates.at(0).value_unsafe();
  if (!candidate.is_object()) return malformed_stream("a candidate is not an object");
  const bool ok = read_parts(
      candidate, [&](std::string_view text) { emit_text(text, emit); },
      [&](std::string_view id, std::string_view name, std::string arguments) {
        const std::size_t index = reply_.tool_calls.size();
        ToolCall& call = tool_call(index);
        call.id = call_id(id, index);
        call.name.assign(name);
        emit_tool_fragment(index, arguments, emit);  // a call arrives whole, in one event
      });
  if (!ok) return malformed_stream("a candidate's parts are not an array of objects");
  if (auto reason = text_of(candidate, "finishReason"); !reason.empty()) {
    reply_.finish_reason.assign(reason);
    if (is_safety_verdict(reason)) {
      Error e = safety_error("finishReason", reason);
      e.http_status = http_status;
      e.partial_content = reply_.content;
      return e;
    }
  }
  return std::nullopt;
}

class GeminiApi : public WireApi {
 public:
  std::string_view name() const override { return "gemini"; }

  Status fill_defaults(const Target& target, std::string& base_url, std::string& key) const override {
    if (base_url.empty()) base_url = "https://generativelanguage.googleapis.com/v1beta";
    if (key.empty() && target.api_key_env.empty()) key = first_env({"GEMINI_API_KEY", "GOOGLE_API_KEY"});
    return ok_status();
  }

  Endpoint endpoint(const Target& target, std::string_view root, bool /*keyed*/) const override {
    return urls(fmt::format("{}/models/{}", root, target.model));
  }

  // In a header, never in the URL: URLs end up in proxies' and servers' logs.
  Headers credential_headers(std::string_view key) const override { return {{"x-goog-api-key", std::string(key)}}; }

  std::span<const std::string_view> credential_envs() const override {
    static constexpr std::string_view kEnvs[] = {"GEMINI_API_KEY", "GOOGLE_API_KEY"};
    return kEnvs;
  }

  Status write_body(std::string& out, const ChatRequest& request, std::string_view /*model*/, const Extras& extras,
                    bool /*stream*/) const override {
    return write_generate_content(out, request, extras);  // the model and streaming are in the URL
  }

  ReplyShape read_reply(element root, ChatResponse& r, ReportedUsage& usage) const override {
    if (!read_text(root, "responseId", r.id) || !read_text(root, "modelVersion", r.model)) {
      return ReplyShape::kWrongType;
    }
    read_openai_style_usage(root, usage);
    bool ok = true;
    auto candidates = child_array(root, "candidates", ok);
    if (!ok) return ReplyShape::kWrongType;
    if (!candidates || candidates->size() == 0) {
      // A blocked prompt has no candidates, only promptFeedback: withheld() says so.
      element feedback;
      return root["promptFeedback"].get(feedback) == simdjson::SUCCESS ? ReplyShape::kAnswer : ReplyShape::kNoAnswer;
    }
    element candidate = candidates->at(0).value_unsafe();
    if (!candidate.is_object() || !read_text(candidate, "finishReason", r.finish_reason)) {
      return ReplyShape::kWrongType;
    }
    ok = read_parts(
        candidate, [&](std::string_view text) { r.content.append(text); },
        [&](std::string_view id, std::string_view name, std::string arguments) {
          const std::size_t index = r.tool_calls.size();
          r.tool_calls.push_back({.id = call_id(id, index), .name = std::string(name), .arguments_json = arguments});
        });
    return ok ? ReplyShape::kAnswer : ReplyShape::kWrongType;
  }

  std::optional<Error> withheld(element root, const ChatResponse& reply) const override {
    element feedback;
    if (root["promptFeedback"].get(feedback) == simdjson::SUCCESS) {
      if (auto reason = text_of(feedback, "blockReason"); !reason.empty()) {
        return safety_error("the prompt was blocked:", reason);
      }
    }
    if (is_safety_verdict(reply.finish_reason)) return safety_error("finishReason", reply.finish_reason);
    element candidates;
    if (root["candidates"].get(candidates) != simdjson::SUCCESS) {
      return make_error(ErrorCategory::kTransient, "malformed response body: no candidates and no block reason");
    }
    return std::nullopt;
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override { return std::make_unique<GeminiStreamDecoder>(); }

 protected:
  static Endpoint urls(std::string_view model_url) {
    Endpoint e;
    e.url = fmt::format("{}:generateContent", model_url);
    e.stream_url = fmt::format("{}:streamGenerateContent?alt=sse", model_url);
    return e;
  }
};

// Vertex AI: Gemini's body at a project's and location's URL; the credential
// is an OAuth access token, sent as a bearer token.
class VertexApi final : public GeminiApi {
 public:
  std::string_view name() const override { return "vertex"; }

  Status fill_defaults(const Target& target, std::string& base_url, std::string& key) const override {
    const std::string location = location_of(target);
    if (project_of(target).empty()) {
      return Status(
          make_error(ErrorCategory::kBadRequest,
                     fmt::format("target \"{}\": vertex needs project (or GOOGLE_CLOUD_PROJECT)", target.name)));
    }
    if (location.empty()) {
      return Status(
          make_error(ErrorCategory::kBadRequest,
                     fmt::format("target \"{}\": vertex needs location (or GOOGLE_CLOUD_LOCATION)", target.name)));
    }
    if (base_url.empty()) {
      base_url = location == "global" ? std::string("https://aiplatform.googleapis.com/v1")
                                      : fmt::format("https://{}-aiplatform.googleapis.com/v1", location);
    }
    (void)key;  // from api_key, api_key_env or a credential source: Vertex has no key variable of its own
    return ok_status();
  }

  Endpoint endpoint(const Target& target, std::string_view root, bool /*keyed*/) const override {
    return urls(fmt::format("{}/projects/{}/locations/{}/publishers/google/models/{}", root, project_of(target),
                            location_of(target), target.model));
  }

  Headers credential_headers(std::string_view key) const override {
    return {{"authorization", fmt::format("Bearer {}", key)}};
  }

  std::span<const std::string_view> credential_envs() const override { return {}; }

 private:
  static std::string project_of(const Target& t) {
    return t.project.empty() ? first_env({"GOOGLE_CLOUD_PROJECT"}) : t.project;
  }
  static std::string location_of(const Target& t) {
    return t.location.empty() ? first_env({"GOOGLE_CLOUD_LOCATION"}) : t.location;
  }
};

}  // namespace

const WireApi& gemini_wire_api() {
  static const GeminiApi api;
  return api;
}

const WireApi& vertex_wire_api() {
  static const VertexApi api;
  return api;
}

}  // namespace llmguard::internal
