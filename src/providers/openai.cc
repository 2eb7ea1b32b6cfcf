// OpenAI's chat completions API, spoken by OpenAI, by every OpenAI-compatible
// server (vLLM, Ollama, Groq, ...) and by Azure OpenAI's deployments.
#include <fmt/format.h>
#include <simdjson.h>

#include "classify.h"
#include "json_unescape.h"
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
  // What one chunk says, read in a single pass and acted on only once the
  // whole chunk has proved well formed: views into the parser's buffers,
  // valid until the next chunk.
  struct Chunk {
    std::string_view id, model, content, refusal, finish_reason, tool_calls, usage;
    bool has_content = false, has_refusal = false;
  };
  static simdjson::error_code read_chunk(simdjson::ondemand::object root, Chunk& out, bool& error_member);
  static simdjson::error_code read_choice(simdjson::ondemand::value choices, Chunk& out);
  std::optional<Error> on_tool_call_deltas(simdjson::dom::array calls, const Emit& emit);

  ReportedUsage usage_;
};

// Each event is read on demand rather than parsed into a DOM: a chunk is
// mostly fields nobody needs (obfuscation padding, logprobs, fingerprints),
// and building their tape cost more than reading the few that matter. Values
// left unread are checked for structure only (brackets, strings); the chunk
// must end where its object does.
std::optional<Error> OpenAIStreamDecoder::on_event(const SseEvent& event, const Emit& emit, int http_status,
                                                   const Headers& headers) {
  const std::string_view data = event.data;
  if (data == "[DONE]") {
    mark_complete();
    return std::nullopt;
  }
  thread_local simdjson::ondemand::parser parser;
  thread_local std::string padded;
  padded.reserve(data.size() + simdjson::SIMDJSON_PADDING);
  padded.assign(data);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object root;
  Chunk chunk;
  bool error_member = false;
  if (parser.iterate(padded.data(), padded.size(), padded.capacity()).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(root) != simdjson::SUCCESS || read_chunk(root, chunk, error_member) != simdjson::SUCCESS ||
      doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return malformed_stream("an event's data is not a JSON object");
  }
  if (error_member) return classify_response(http_status, headers, data);
  if (!chunk.usage.empty()) {
    thread_local simdjson::dom::parser usage_parser;
    element usage;
    if (parse_allowing_out_of_range_numbers(usage_parser, chunk.usage.data(), chunk.usage.size(), true, usage) ==
            simdjson::SUCCESS &&
        read_usage_member("usage", usage, usage_)) {
      mark_usage_seen();
    }
  }
  if (!chunk.id.empty() && chunk.id != reply_.id) reply_.id.assign(chunk.id);
  if (!chunk.model.empty() && chunk.model != reply_.model) reply_.model.assign(chunk.model);
  if (!chunk.finish_reason.empty()) reply_.finish_reason.assign(chunk.finish_reason);
  if (chunk.has_content) emit_text(chunk.content, emit);
  if (chunk.has_refusal) reply_.refusal.append(chunk.refusal);
  if (chunk.tool_calls.empty()) return std::nullopt;
  // Tool call fragments are rarer than text: their few bytes get a DOM of their own.
  thread_local simdjson::dom::parser tools_parser;
  element calls_value;
  simdjson::dom::array calls;
  if (tools_parser.parse(chunk.tool_calls.data(), chunk.tool_calls.size()).get(calls_value) != simdjson::SUCCESS ||
      calls_value.get_array().get(calls) != simdjson::SUCCESS) {
    return std::nullopt;  // not an array: nothing to add, as before
  }
  return on_tool_call_deltas(calls, emit);
}

simdjson::error_code OpenAIStreamDecoder::read_chunk(simdjson::ondemand::object root, Chunk& out, bool& error_member) {
  bool choices_seen = false;
  for (auto member : root) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (auto ec = std::move(member).get(field); ec != simdjson::SUCCESS) return ec;
    if (auto ec = field.unescaped_key().get(key); ec != simdjson::SUCCESS) return ec;
    simdjson::ondemand::value value = field.value();
    if (key == "choices" && !choices_seen) {
      choices_seen = true;
      if (auto ec = read_choice(value, out); ec != simdjson::SUCCESS) return ec;
    } else if (key == "error") {
      bool null = false;
      if (auto ec = value.is_null().get(null); ec != simdjson::SUCCESS) return ec;
      error_member = error_member || !null;
    } else if (key == "usage" && out.usage.empty()) {
      simdjson::ondemand::json_type type;
      if (auto ec = value.type().get(type); ec != simdjson::SUCCESS) return ec;
      if (type == simdjson::ondemand::json_type::object) {
        simdjson::ondemand::object usage;
        if (auto ec = value.get_object().get(usage); ec != simdjson::SUCCESS) return ec;
        if (auto ec = usage.raw_json().get(out.usage); ec != simdjson::SUCCESS) return ec;
      }
    } else if (key == "id" || key == "model") {
      std::string_view& text = key == "id" ? out.id : out.model;
      if (value.get_string().get(text) != simdjson::SUCCESS) text = {};
    }
  }
  return simdjson::SUCCESS;
}

// The first choice is the answer (n > 1 streams the others beside it).
simdjson::error_code OpenAIStreamDecoder::read_choice(simdjson::ondemand::value choices, Chunk& out) {
  using simdjson::ondemand::json_type;
  json_type type;
  if (auto ec = choices.type().get(type); ec != simdjson::SUCCESS) return ec;
  if (type != json_type::array) return simdjson::SUCCESS;
  simdjson::ondemand::array list;
  if (auto ec = choices.get_array().get(list); ec != simdjson::SUCCESS) return ec;
  bool first = true;
  for (auto item : list) {
    simdjson::ondemand::value choice;
    if (auto ec = std::move(item).get(choice); ec != simdjson::SUCCESS) return ec;
    if (!std::exchange(first, false)) continue;
    if (auto ec = choice.type().get(type); ec != simdjson::SUCCESS) return ec;
    if (type != json_type::object) continue;
    simdjson::ondemand::object fields;
    if (auto ec = choice.get_object().get(fields); ec != simdjson::SUCCESS) return ec;
    for (auto member : fields) {
      simdjson::ondemand::field field;
      std::string_view key;
      if (auto ec = std::move(member).get(field); ec != simdjson::SUCCESS) return ec;
      if (auto ec = field.unescaped_key().get(key); ec != simdjson::SUCCESS) return ec;
      simdjson::ondemand::value value = field.value();
      if (key == "finish_reason") {
        if (value.get_string().get(out.finish_reason) != simdjson::SUCCESS) out.finish_reason = {};
      } else if (key == "delta") {
        if (auto ec = value.type().get(type); ec != simdjson::SUCCESS) return ec;
        if (type != json_type::object) continue;
        simdjson::ondemand::object delta;
        if (auto ec = value.get_object().get(delta); ec != simdjson::SUCCESS) return ec;
        for (auto part : delta) {
          simdjson::ondemand::field f;
          std::string_view name;
          if (auto ec = std::move(part).get(f); ec != simdjson::SUCCESS) return ec;
          if (auto ec = f.unescaped_key().get(name); ec != simdjson::SUCCESS) return ec;
          simdjson::ondemand::value v = f.value();
          if (name == "content") {
            out.has_content = v.get_string().get(out.content) == simdjson::SUCCESS;
          } else if (name == "refusal") {
            out.has_refusal = v.get_string().get(out.refusal) == simdjson::SUCCESS;
          } else if (name == "tool_calls") {
            if (auto ec = v.type().get(type); ec != simdjson::SUCCESS) return ec;
            if (type != json_type::array) continue;
            simdjson::ondemand::array calls;
            if (auto ec = v.get_array().get(calls); ec != simdjson::SUCCESS) return ec;
            if (auto ec = calls.raw_json().get(out.tool_calls); ec != simdjson::SUCCESS) return ec;
          }
        }
      }
    }
  }
  return simdjson::SUCCESS;
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

  bool read_long_reply(std::string_view body, ChatResponse& r, ReportedUsage& usage) const override;

  std::unique_ptr<StreamDecoder> stream_decoder() const override { return std::make_unique<OpenAIStreamDecoder>(); }
};

// A long completion is almost all message content, and parsing it into a DOM
// spends most of its time unescaping that one string a mispredicted branch
// per escape. Here the body is read on demand and the content unescaped a
// block at a time (json_unescape.h); everything else is read as read_reply
// reads it. Anything this reader does not expect (an error member, tool
// calls, a refusal, a repeated key, a \u escape in the content, a value of
// another type) leaves the reply to the DOM path, so both give one answer.
// As in the stream decoder, values left unread are checked for structure
// only, and the document must end where its object does.
namespace long_reply {

using simdjson::SUCCESS;
using simdjson::ondemand::json_type;
using simdjson::ondemand::object;
using simdjson::ondemand::value;

// A string or null into `out` (read_text's rule); false for another type.
bool text(value v, std::string& out) {
  json_type type;
  if (v.type().get(type) != SUCCESS) return false;
  if (type == json_type::null) return v.is_null().value_unsafe();
  std::string_view s;
  if (type != json_type::string || v.get_string().get(s) != SUCCESS) return false;
  out.assign(s);
  return true;
}

bool is_null(value v) {
  bool null = false;
  return v.is_null().get(null) == SUCCESS && null;
}

bool message(value message_value, std::string_view body, ChatResponse& r) {
  object fields;
  if (message_value.get_object().get(fields) != SUCCESS) return false;
  bool content_seen = false, refusal_seen = false;
  for (auto member : fields) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(member).get(field) != SUCCESS || field.unescaped_key().get(key) != SUCCESS) return false;
    value v = field.value();
    if (key == "content") {
      if (std::exchange(content_seen, true)) return false;
      json_type type;
      if (v.type().get(type) != SUCCESS) return false;
      if (type == json_type::null) {
        if (!is_null(v)) return false;
        continue;
      }
      simdjson::ondemand::raw_json_string raw;
      if (type != json_type::string || v.get_raw_json_string().get(raw) != SUCCESS) return false;
      const char* at = raw.raw();
      if (!append_unescaped(at, body.data() + body.size(), r.content)) return false;
    } else if (key == "refusal" || key == "tool_calls") {
      if ((key == "refusal" && std::exchange(refusal_seen, true)) || !is_null(v)) return false;
    }
  }
  return true;
}

bool first_choice(value v, std::string_view body, ChatResponse& r) {
  simdjson::ondemand::array choices;
  if (v.get_array().get(choices) != SUCCESS) return false;
  bool first = true, read = false;
  for (auto item : choices) {
    value choice;
    if (std::move(item).get(choice) != SUCCESS) return false;
    if (!std::exchange(first, false)) continue;  // n > 1: the first is the answer
    object fields;
    if (choice.get_object().get(fields) != SUCCESS) return false;
    bool finish_seen = false, message_seen = false;
    for (auto member : fields) {
      simdjson::ondemand::field field;
      std::string_view key;
      if (std::move(member).get(field) != SUCCESS || field.unescaped_key().get(key) != SUCCESS) return false;
      if (key == "finish_reason") {
        if (std::exchange(finish_seen, true) || !text(field.value(), r.finish_reason)) return false;
      } else if (key == "message") {
        if (std::exchange(message_seen, true) || !message(field.value(), body, r)) return false;
      }
    }
    read = message_seen;
  }
  return read;
}

}  // namespace long_reply

bool OpenAIChat::read_long_reply(std::string_view body, ChatResponse& r, ReportedUsage& usage) const {
  if (!block_unescape_available()) return false;
  thread_local simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object root;
  if (parser.iterate(body.data(), body.size(), body.size() + simdjson::SIMDJSON_PADDING).get(doc) !=
          simdjson::SUCCESS ||
      doc.get_object().get(root) != simdjson::SUCCESS) {
    return false;
  }
  ChatResponse reply;
  std::string_view usage_json;
  bool id_seen = false, model_seen = false, choices_seen = false;
  for (auto member : root) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(member).get(field) != simdjson::SUCCESS || field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return false;
    }
    long_reply::value v = field.value();
    if (key == "id" || key == "model") {
      if (std::exchange(key == "id" ? id_seen : model_seen, true)) return false;
      if (!long_reply::text(v, key == "id" ? reply.id : reply.model)) return false;
    } else if (key == "choices") {
      if (std::exchange(choices_seen, true) || !long_reply::first_choice(v, body, reply)) return false;
    } else if (key == "usage") {
      if (!usage_json.empty()) return false;
      simdjson::ondemand::object counts;
      if (v.get_object().get(counts) != simdjson::SUCCESS || counts.raw_json().get(usage_json) != simdjson::SUCCESS) {
        return false;
      }
    } else if (key == "error" || key == "type") {
      return false;  // maybe an error reply: the general path judges it
    }
  }
  if (!choices_seen || doc.current_location().error() != simdjson::OUT_OF_BOUNDS) return false;
  ReportedUsage counts;
  if (!usage_json.empty()) {
    thread_local simdjson::dom::parser usage_parser;
    element parsed;
    if (parse_allowing_out_of_range_numbers(usage_parser, usage_json.data(), usage_json.size(), true, parsed) !=
            simdjson::SUCCESS ||
        !read_usage_member("usage", parsed, counts)) {
      return false;
    }
  }
  r = std::move(reply);
  usage = counts;
  return true;
}

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
