// Anthropic's Messages API.
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

// Anthropic counts cache reads and writes apart from input_tokens; the common
// Usage counts every prompt token in prompt_tokens.
ReportedUsage common_usage(const AnthropicUsageParts& parts, bool reported) {
  return {.reported = reported,
          .prompt = parts.prompt(),
          .completion = parts.output,
          .cached = parts.cache_read,
          .cache_write = parts.cache_write};
}

// The Messages API's turns: system messages go to "system", an assistant's
// tool calls are tool_use blocks, and the results that answer them are
// tool_result blocks of one user turn (Anthropic advises against a turn per
// result: the model learns to stop calling tools in parallel).
Status write_messages(JsonWriter& w, const std::vector<Message>& messages) {
  w.key("messages").begin_array();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == Role::kSystem) continue;
    if (m.role == Role::kTool) {
      w.begin_object().key("role").string("user").key("content").begin_array();
      for (; i < messages.size() && messages[i].role == Role::kTool; ++i) {
        const Message& result = messages[i];
        w.begin_object().key("type").string("tool_result").key("tool_use_id").string(result.tool_call_id);
        w.key("content").string(result.content);
        if (result.is_error) w.key("is_error").boolean(true);
        w.end_object();
      }
      --i;  // the loop's ++i steps past the last result
      w.end_array().end_object();
      continue;
    }
    w.begin_object().key("role").string(role_name(m.role));
    if (m.tool_calls.empty()) {
      w.key("content").string(m.content);
    } else {
      w.key("content").begin_array();
      if (!m.content.empty()) w.begin_object().key("type").string("text").key("text").string(m.content).end_object();
      for (std::size_t j = 0; j < m.tool_calls.size(); ++j) {
        const ToolCall& c = m.tool_calls[j];
        std::string_view input = c.arguments_json.empty() ? std::string_view("{}") : c.arguments_json;
        if (auto s = validate_json(input, fmt::format("messages[{}].tool_calls[{}].arguments_json", i, j)); !s.ok()) {
          return s;
        }
        w.begin_object().key("type").string("tool_use").key("id").string(c.id);
        w.key("name").string(c.name).key("input").raw(input).end_object();
      }
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();
  return ok_status();
}

void write_tool_choice(JsonWriter& w, const ToolChoice& choice) {
  w.begin_object().key("type");
  switch (choice.mode) {
    case ToolChoice::Mode::kAuto:
      w.string("auto");
      break;
    case ToolChoice::Mode::kNone:
      w.string("none");
      break;
    case ToolChoice::Mode::kRequired:
      w.string("any");
      break;
    case ToolChoice::Mode::kFunction:
      w.string("tool").key("name").string(choice.function_name);
      break;
  }
  w.end_object();
}

class AnthropicStreamDecoder final : public SseStreamDecoder {
 protected:
  std::optional<Error> on_event(const SseEvent& event, const Emit& emit, int http_status,
                                const Headers& headers) override;

  ReportedUsage final_usage() override {
    // A tool called without arguments streams none; its input is still an object.
    for (ToolCall& call : reply_.tool_calls) {
      if (call.arguments_json.empty()) call.arguments_json = "{}";
    }
    return common_usage(usage_, saw_usage());
  }

 private:
  AnthropicUsageParts usage_;
  // Content block index -> tool call index (-1 for text blocks).
  std::vector<int> block_tool_;
};

std::optional<Error> AnthropicStreamDecoder::on_event(const SseEvent& event, const Emit& emit, int http_status,
                                                      const Headers& headers) {
  const std::string_view data = event.data;
  thread_local simdjson::dom::parser parser;
  element root;
  if (parse_allowing_out_of_range_numbers(parser, data.data(), data.size(), true, root) != simdjson::SUCCESS ||
      !root.is_object()) {
    return malformed_stream("an event's data is not a JSON object");
  }
  const std::string_view type = text_of(root, "type");
  if (type == "error") return classify_response(http_status, headers, data);
  if (type == "message_start") {
    element message;
    if (root["message"].get(message) != simdjson::SUCCESS) return malformed_stream("message_start without message");
    reply_.id.assign(text_of(message, "id"));
    reply_.model.assign(text_of(message, "model"));
    simdjson::dom::object usage;
    if (message["usage"].get_object().get(usage) == simdjson::SUCCESS) {
      mark_usage_seen();
      read_anthropic_usage(usage, usage_);
      // message_start's output_tokens is a running count (often 1), not the bill.
      usage_.output = {};
    }
  } else if (type == "content_block_start") {
    const std::int64_t index = int_of(root, "index");
    if (index < 0 || index > 1024) return malformed_stream("content block index out of range");
    const auto b = static_cast<std::size_t>(index);
    if (block_tool_.size() <= b) block_tool_.resize(b + 1, -1);
    element block;
    if (root["content_block"].get(block) != simdjson::SUCCESS) return malformed_stream("block without content_block");
    if (text_of(block, "type") == "tool_use") {
      const std::size_t t = reply_.tool_calls.size();
      block_tool_[b] = static_cast<int>(t);
      ToolCall& call = tool_call(t);
      call.id.assign(text_of(block, "id"));
      call.name.assign(text_of(block, "name"));
    } else {
      emit_text(text_of(block, "text"), emit);
    }
  } else if (type == "content_block_delta") {
    const std::int64_t index = int_of(root, "index");
    element delta;
    if (root["delta"].get(delta) != simdjson::SUCCESS) return malformed_stream("delta missing");
    const std::string_view delta_type = text_of(delta, "type");
    if (delta_type == "text_delta") {
      emit_text(text_of(delta, "text"), emit);
    } else if (delta_type == "input_json_delta") {
      if (index < 0 || static_cast<std::size_t>(index) >= block_tool_.size() || block_tool_[index] < 0) {
        return malformed_stream("input_json_delta for a block that is not a tool call");
      }
      emit_tool_fragment(static_cast<std::size_t>(block_tool_[index]), text_of(delta, "partial_json"), emit);
    }
  } else if (type == "message_delta") {
    element delta;
    if (root["delta"].get(delta) == simdjson::SUCCESS) {
      if (auto reason = text_of(delta, "stop_reason"); !reason.empty()) reply_.finish_reason.assign(reason);
    }
    simdjson::dom::object usage;
    if (root["usage"].get_object().get(usage) == simdjson::SUCCESS) {
      mark_usage_seen();
      read_anthropic_usage(usage, usage_);
    }
  } else if (type == "message_stop") {
    mark_complete();
  }
  return std::nullopt;  // ping and unknown event types are ignored
}

class AnthropicMessages final : public WireApi {
 public:
  std::string_view name() const override { return "anthropic"; }

  Status fill_defaults(const Target& target, std::string& base_url, std::string& key) const override {
    if (base_url.empty()) base_url = sdk_base_url();
    if (base_url.empty()) base_url = "https://api.anthropic.com/v1";
    if (key.empty() && target.api_key_env.empty()) key = first_env({"ANTHROPIC_API_KEY"});
    return ok_status();
  }

  Endpoint endpoint(const Target& target, std::string_view root, bool /*keyed*/) const override {
    Endpoint e;
    e.url = fmt::format("{}/messages", root);
    e.stream_url = e.url;
    e.headers.emplace_back("anthropic-version", target.api_version.empty() ? "2023-06-01" : target.api_version);
    return e;
  }

  Headers credential_headers(std::string_view key) const override { return {{"x-api-key", std::string(key)}}; }

  std::span<const std::string_view> credential_envs() const override {
    static constexpr std::string_view kEnvs[] = {"ANTHROPIC_API_KEY"};
    return kEnvs;
  }

  Status write_body(std::string& out, const ChatRequest& request, std::string_view model, const Extras& extras,
                    bool stream) const override {
    JsonWriter w(out);
    w.begin_object();
    if (!extras.has("model")) w.key("model").string(model);
    // The Messages API requires max_tokens; 4096 fits every current model.
    if (!extras.has("max_tokens")) w.key("max_tokens").number(request.max_tokens.value_or(4096));
    std::string system;
    for (const Message& m : request.messages) {
      if (m.role != Role::kSystem) continue;
      if (!system.empty()) system += "\n\n";
      system += m.content;
    }
    if (!system.empty() && !extras.has("system")) w.key("system").string(system);
    if (auto written = write_messages(w, request.messages); !written.ok()) return written;
    if (!request.tools.empty() && !extras.has("tools")) {
      w.key("tools").begin_array();
      for (const Tool& t : request.tools) {
        w.begin_object().key("name").string(t.name);
        if (!t.description.empty()) w.key("description").string(t.description);
        w.key("input_schema").raw(t.parameters_json).end_object();
      }
      w.end_array();
    }
    if (request.tool_choice && !extras.has("tool_choice")) {
      w.key("tool_choice");
      write_tool_choice(w, *request.tool_choice);
    }
    if (request.temperature && !extras.has("temperature")) w.key("temperature").number(*request.temperature);
    if (request.top_p && !extras.has("top_p")) w.key("top_p").number(*request.top_p);
    if (!request.stop.empty() && !extras.has("stop_sequences")) {
      w.key("stop_sequences").begin_array();
      for (const auto& s : request.stop) w.string(s);
      w.end_array();
    }
    if (stream && !extras.has("stream")) w.key("stream").boolean(true);
    for (const auto& [k, v] : extras.members) w.key(k).raw(v);
    w.end_object();
    return ok_status();
  }

  ReplyShape read_reply(element root, ChatResponse& r, ReportedUsage& usage) const override {
    if (!read_text(root, "id", r.id) || !read_text(root, "model", r.model) ||
        !read_text(root, "stop_reason", r.finish_reason)) {
      return ReplyShape::kWrongType;
    }
    // A usage of the wrong type is no usage: the reply is not lost over it.
    simdjson::dom::object usage_object;
    if (root["usage"].get_object().get(usage_object) == simdjson::SUCCESS) {
      AnthropicUsageParts parts;
      read_anthropic_usage(usage_object, parts);
      usage = common_usage(parts, true);
    }
    bool ok = true;
    auto blocks = child_array(root, "content", ok);
    if (!ok) return ReplyShape::kWrongType;
    if (!blocks) return ReplyShape::kNoAnswer;
    for (element block : *blocks) {
      if (!block.is_object()) return ReplyShape::kWrongType;
      std::string type;
      if (!read_text(block, "type", type)) return ReplyShape::kWrongType;
      if (type == "text") {
        std::string text;
        if (!read_text(block, "text", text)) return ReplyShape::kWrongType;
        r.content += text;
      } else if (type == "tool_use") {
        ToolCall tc;
        if (!read_text(block, "id", tc.id) || !read_text(block, "name", tc.name)) return ReplyShape::kWrongType;
        element input_value;
        if (block["input"].get(input_value) == simdjson::SUCCESS) tc.arguments_json = simdjson::minify(input_value);
        r.tool_calls.push_back(std::move(tc));
      }
    }
    return ReplyShape::kAnswer;
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override { return std::make_unique<AnthropicStreamDecoder>(); }

 private:
  // ANTHROPIC_BASE_URL, as Anthropic's SDKs (and Claude Code) read it, names
  // the host without the version ("https://api.anthropic.com"); base_url
  // here includes it. Either form is taken.
  static std::string sdk_base_url() {
    std::string url = first_env({"ANTHROPIC_BASE_URL"});
    while (url.ends_with('/')) url.pop_back();
    if (!url.empty() && !url.ends_with("/v1")) url += "/v1";
    return url;
  }
};

}  // namespace

const WireApi& anthropic_wire_api() {
  static const AnthropicMessages api;
  return api;
}

}  // namespace llmguard::internal
