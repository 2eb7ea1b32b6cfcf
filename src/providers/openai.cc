// OpenAI's chat completions API, spoken by OpenAI, by every OpenAI-compatible
// server (vLLM, Ollama, Groq, ...) and by Azure OpenAI's deployments.
#include <fmt/format.h>
#include <simdjson.h>

#include "classify.h"
#include "json_writer.h"
#include "providers/wire.h"
#include "providers/wire_api.h"
#include "usage_json.h"

namespace llmguard::internal {
namespace {

using simdjson::dom::element;

void write_messages(JsonWriter& w, const ChatRequest& request) {
  w.key("messages").begin_array();
  for (const Message& m : request.messages) {
    w.begin_object().key("role").string(role_name(m.role));
    if (m.role == Role::kAssistant && !m.tool_calls.empty() && m.content.empty()) {
      w.key("content").null();
    } else {
      w.key("content").string(m.content);
    }
    if (!m.name.empty()) w.key("name").string(m.name);
    if (m.role == Role::kTool) w.key("tool_call_id").string(m.tool_call_id);
    if (!m.tool_calls.empty()) {
      w.key("tool_calls").begin_array();
      for (const ToolCall& c : m.tool_calls) {
        w.begin_object().key("id").string(c.id).key("type").string("function");
        w.key("function").begin_object().key("name").string(c.name);
        w.key("arguments").string(c.arguments_json).end_object();
        w.end_object();
      }
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();
}

void write_tool_choice(JsonWriter& w, const ToolChoice& choice) {
  switch (choice.mode) {
    case ToolChoice::Mode::kAuto:
      w.string("auto");
      break;
    case ToolChoice::Mode::kNone:
      w.string("none");
      break;
    case ToolChoice::Mode::kRequired:
      w.string("required");
      break;
    case ToolChoice::Mode::kFunction:
      w.begin_object().key("type").string("function").key("function").begin_object();
      w.key("name").string(choice.function_name).end_object().end_object();
      break;
  }
}

// Reads one tool call of a reply's message.
bool read_tool_call(element call, ToolCall& out) {
  if (!call.is_object()) return false;
  bool ok = read_text(call, "id", out.id);
  if (auto fn = child_object(call, "function", ok)) {
    ok = ok && read_text(*fn, "name", out.name) && read_text(*fn, "arguments", out.arguments_json);
  }
  return ok;
}

class OpenAIStreamDecoder final : public SseStreamDecoder {
 protected:
  std::optional<Error> on_event(const SseEvent& event, const Emit& emit, int http_status,
                                const Headers& headers) override;
  ReportedUsage final_usage() override { return usage_; }

 private:
  std::optional<Error> on_choice(element choice, const Emit& emit);
  std::optional<Error> on_tool_call_deltas(simdjson::dom::array calls, const Emit& emit);

  ReportedUsage usage_;
};

std::optional<Error> OpenAIStreamDecoder::on_event(const SseEvent& event, const Emit& emit, int http_status,
                                                   const Headers& headers) {
  const std::string_view data = event.data;
  if (data == "[DONE]") {
    mark_complete();
    return std::nullopt;
  }
  thread_local simdjson::dom::parser parser;
  element root;
  simdjson::dom::object chunk;
  if (parse_allowing_out_of_range_numbers(parser, data.data(), data.size(), true, root) != simdjson::SUCCESS ||
      root.get_object().get(chunk) != simdjson::SUCCESS) {
    return malformed_stream("an event's data is not a JSON object");
  }
  // One walk over the chunk's members: each lookup by name would walk them again.
  element choices;
  bool has_choices = false, has_usage = false;
  for (simdjson::dom::key_value_pair member : chunk) {
    const std::string_view key = member.key;
    if (key == "choices") {
      choices = member.value;
      has_choices = true;
    } else if (key == "error") {
      if (!member.value.is_null()) return classify_response(http_status, headers, data);
    } else if (key == "id" || key == "model") {
      std::string_view text;
      std::string& field = key == "id" ? reply_.id : reply_.model;
      if (member.value.get_string().get(text) == simdjson::SUCCESS && !text.empty() && text != field) {
        field.assign(text);
      }
    } else if (!has_usage) {
      has_usage = read_usage_member(key, member.value, usage_);
      if (has_usage) mark_usage_seen();
    }
  }
  simdjson::dom::array choice_list;
  if (!has_choices || choices.get_array().get(choice_list) != simdjson::SUCCESS || choice_list.size() == 0) {
    return std::nullopt;
  }
  return on_choice(choice_list.at(0).value_unsafe(), emit);  // n > 1: the first is the answer
}

std::optional<Error> OpenAIStreamDecoder::on_choice(element choice, const Emit& emit) {
  if (auto reason = text_of(choice, "finish_reason"); !reason.empty()) reply_.finish_reason.assign(reason);
  element delta_value;
  simdjson::dom::object delta;
  if (choice["delta"].get(delta_value) != simdjson::SUCCESS ||
      delta_value.get_object().get(delta) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  element tool_calls;
  bool has_tool_calls = false;
  for (simdjson::dom::key_value_pair member : delta) {
    const std::string_view key = member.key;
    std::string_view text;
    if (key == "content") {
      if (member.value.get_string().get(text) == simdjson::SUCCESS) emit_text(text, emit);
    } else if (key == "refusal") {
      if (member.value.get_string().get(text) == simdjson::SUCCESS) reply_.refusal.append(text);
    } else if (key == "tool_calls") {
      tool_calls = member.value;
      has_tool_calls = true;
    }
  }
  simdjson::dom::array calls;
  if (has_tool_calls && tool_calls.get_array().get(calls) == simdjson::SUCCESS) return on_tool_call_deltas(calls, emit);
  return std::nullopt;
}

std::optional<Error> OpenAIStreamDecoder::on_tool_call_deltas(simdjson::dom::array calls, const Emit& emit) {
  for (element call : calls) {
    const std::int64_t index = int_of(call, "index");
    if (index < 0 || index > 1024) return malformed_stream("tool call index out of range");
    const auto i = static_cast<std::size_t>(index);
    ToolCall& tc = tool_call(i);
    if (auto id = text_of(call, "id"); !id.empty()) tc.id.assign(id);
    element fn;
    std::string_view arguments;
    if (call["function"].get(fn) == simdjson::SUCCESS && fn.is_object()) {
      if (auto name = text_of(fn, "name"); !name.empty()) tc.name.assign(name);
      arguments = text_of(fn, "arguments");
    }
    // The first delta of a call tells the caller its id and name, even without arguments.
    if (!tool_started(i) || !arguments.empty()) emit_tool_fragment(i, arguments, emit);
  }
  return std::nullopt;
}

class OpenAIChat : public WireApi {
 public:
  std::string_view name() const override { return "openai"; }

  Status fill_defaults(const Target& target, std::string& base_url, std::string& key) const override {
    if (base_url.empty()) base_url = first_env({"OPENAI_BASE_URL", "OPENAI_API_BASE"});
    if (base_url.empty()) base_url = "https://api.openai.com/v1";
    if (key.empty() && target.api_key_env.empty()) key = first_env({"OPENAI_API_KEY"});
    return ok_status();
  }

  Endpoint endpoint(const Target& /*target*/, std::string_view root, bool /*keyed*/) const override {
    Endpoint e;
    e.url = fmt::format("{}/chat/completions", root);
    e.stream_url = e.url;
    return e;
  }

  Headers credential_headers(std::string_view key) const override {
    return {{"authorization", fmt::format("Bearer {}", key)}};
  }

  std::span<const std::string_view> credential_envs() const override {
    static constexpr std::string_view kEnvs[] = {"OPENAI_API_KEY"};
    return kEnvs;
  }

  Status write_body(std::string& out, const ChatRequest& request, std::string_view model, const Extras& extras,
                    bool stream) const override {
    JsonWriter w(out);
    w.begin_object();
    if (!extras.has("model")) w.key("model").string(model);
    write_messages(w, request);
    if (!request.tools.empty() && !extras.has("tools")) {
      w.key("tools").begin_array();
      for (const Tool& t : request.tools) {
        w.begin_object().key("type").string("function").key("function").begin_object();
        w.key("name").string(t.name);
        if (!t.description.empty()) w.key("description").string(t.description);
        w.key("parameters").raw(t.parameters_json).end_object().end_object();
      }
      w.end_array();
    }
    if (request.tool_choice && !extras.has("tool_choice")) {
      w.key("tool_choice");
      write_tool_choice(w, *request.tool_choice);
    }
    if (request.temperature && !extras.has("temperature")) w.key("temperature").number(*request.temperature);
    if (request.top_p && !extras.has("top_p")) w.key("top_p").number(*request.top_p);
    if (request.max_tokens && !extras.has("max_tokens")) w.key("max_tokens").number(*request.max_tokens);
    if (!request.stop.empty() && !extras.has("stop")) {
      w.key("stop").begin_array();
      for (const auto& s : request.stop) w.string(s);
      w.end_array();
    }
    if (!request.response_format_json.empty() && !extras.has("response_format")) {
      w.key("response_format").raw(request.response_format_json);
    }
    if (stream && !extras.has("stream")) w.key("stream").boolean(true);
    // Without this, OpenAI-compatible servers send no usage in a stream.
    if (stream && !extras.has("stream_options")) {
      w.key("stream_options").begin_object().key("include_usage").boolean(true).end_object();
    }
    for (const auto& [k, v] : extras.members) w.key(k).raw(v);
    w.end_object();
    return ok_status();
  }

  ReplyShape read_reply(element root, ChatResponse& r, ReportedUsage& usage) const override {
    bool ok = read_text(root, "id", r.id) && read_text(root, "model", r.model);
    read_openai_style_usage(root, usage);
    auto choices = child_array(root, "choices", ok);
    if (!ok) return ReplyShape::kWrongType;
    if (!choices || choices->size() == 0) return ReplyShape::kNoAnswer;
    element choice = choices->at(0).value_unsafe();  // n > 1: the first is the answer
    if (!choice.is_object() || !read_text(choice, "finish_reason", r.finish_reason)) return ReplyShape::kWrongType;
    auto message = child_object(choice, "message", ok);
    if (!ok || !message) return ReplyShape::kWrongType;
    ok = read_text(*message, "content", r.content) && read_text(*message, "refusal", r.refusal);
    if (auto calls = child_array(*message, "tool_calls", ok)) {
      for (element call : *calls) {
        ToolCall tc;
        if (!read_tool_call(call, tc)) return ReplyShape::kWrongType;
        r.tool_calls.push_back(std::move(tc));
      }
    }
    return ok ? ReplyShape::kAnswer : ReplyShape::kWrongType;
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override { return std::make_unique<OpenAIStreamDecoder>(); }
};

// Azure OpenAI: the same body and replies at a deployment's URL, with the
// key in `api-key` and the API version in the query.
class AzureChat final : public OpenAIChat {
 public:
  std::string_view name() const override { return "azure"; }

  Status fill_defaults(const Target& target, std::string& base_url, std::string& key) const override {
    if (base_url.empty()) base_url = first_env({"AZURE_OPENAI_ENDPOINT"});
    if (base_url.empty()) {
      return Status(
          make_error(ErrorCategory::kBadRequest,
                     fmt::format("target \"{}\": azure needs base_url (the resource endpoint)", target.name)));
    }
    if (key.empty() && target.api_key_env.empty()) key = first_env({"AZURE_OPENAI_API_KEY"});
    return ok_status();
  }

  Endpoint endpoint(const Target& target, std::string_view root, bool /*keyed*/) const override {
    Endpoint e;
    e.url = fmt::format("{}/openai/deployments/{}/chat/completions?api-version={}", root, target.model,
                        target.api_version.empty() ? "2024-10-21" : target.api_version);
    e.stream_url = e.url;
    return e;
  }

  Headers credential_headers(std::string_view key) const override { return {{"api-key", std::string(key)}}; }

  // A credential source's tokens are Microsoft Entra ID access tokens (scope
  // https://cognitiveservices.azure.com/.default); Azure wants them as bearer tokens.
  Headers token_headers(std::string_view token) const override {
    return {{"authorization", fmt::format("Bearer {}", token)}};
  }

  std::span<const std::string_view> credential_envs() const override {
    static constexpr std::string_view kEnvs[] = {"AZURE_OPENAI_API_KEY"};
    return kEnvs;
  }
};

}  // namespace

const WireApi& openai_wire_api() {
  static const OpenAIChat api;
  return api;
}

const WireApi& azure_wire_api() {
  static const AzureChat api;
  return api;
}

}  // namespace llmguard::internal
