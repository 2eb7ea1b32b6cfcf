#include "stream.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "classify.h"
#include "usage_json.h"

namespace llmguard::internal {
namespace {

using simdjson::dom::element;

Error malformed_stream(std::string_view what) {
  return make_error(ErrorCategory::kTransient, fmt::format("malformed stream: {}", what));
}

std::string_view text_of(element parent, std::string_view key) {
  std::string_view s;
  if (parent[key].get_string().get(s) != simdjson::SUCCESS) return {};
  return s;
}

std::int64_t int_of(element parent, std::string_view key, std::int64_t fallback = 0) {
  std::int64_t n = 0;
  if (parent[key].get_int64().get(n) != simdjson::SUCCESS) return fallback;
  return n;
}

}  // namespace

void StreamAccumulator::emit_text(std::string_view text, const Emit& emit) {
  if (text.empty()) return;
  response_.content.append(text);
  delivered_ = true;
  if (emit) emit(StreamDelta{.kind = StreamDelta::Kind::kText, .text = text});
}

void StreamAccumulator::emit_tool_fragment(std::size_t index, std::string_view fragment, bool first, const Emit& emit) {
  ToolCall& call = response_.tool_calls[index];
  call.arguments_json.append(fragment);
  delivered_ = true;
  if (emit) {
    StreamDelta d{.kind = StreamDelta::Kind::kToolCall, .text = fragment, .tool_index = static_cast<int>(index)};
    if (first) {
      d.tool_call_id = call.id;
      d.tool_name = call.name;
    }
    emit(d);
  }
}

std::optional<Error> StreamAccumulator::on_event(const SseEvent& event, const Emit& emit, int http_status,
                                                 const Headers& headers) {
  if (provider_ == Provider::kAnthropic) return on_anthropic(event.data, emit, http_status, headers);
  return on_openai(event.data, emit, http_status, headers);
}

std::optional<Error> StreamAccumulator::on_openai(std::string_view data, const Emit& emit, int http_status,
                                                  const Headers& headers) {
  if (data == "[DONE]") {
    complete_ = true;
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
      std::string& field = key == "id" ? response_.id : response_.model;
      if (member.value.get_string().get(text) == simdjson::SUCCESS && !text.empty() && text != field) {
        field.assign(text);
      }
    } else if (!has_usage) {
      has_usage = read_usage_member(key, member.value, openai_usage_);
      saw_usage_ |= has_usage;
    }
  }
  simdjson::dom::array choice_list;
  if (!has_choices || choices.get_array().get(choice_list) != simdjson::SUCCESS || choice_list.size() == 0) {
    return std::nullopt;
  }
  element choice = choice_list.at(0).value_unsafe();
  if (auto reason = text_of(choice, "finish_reason"); !reason.empty()) response_.finish_reason.assign(reason);
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
      if (member.value.get_string().get(text) == simdjson::SUCCESS) response_.refusal.append(text);
    } else if (key == "tool_calls") {
      tool_calls = member.value;
      has_tool_calls = true;
    }
  }
  simdjson::dom::array calls;
  if (has_tool_calls && tool_calls.get_array().get(calls) == simdjson::SUCCESS) return on_tool_call_deltas(calls, emit);
  return std::nullopt;
}

std::optional<Error> StreamAccumulator::on_tool_call_deltas(simdjson::dom::array calls, const Emit& emit) {
  for (element call : calls) {
    const std::int64_t index = int_of(call, "index");
    if (index < 0 || index > 1024) return malformed_stream("tool call index out of range");
    const auto i = static_cast<std::size_t>(index);
    if (response_.tool_calls.size() <= i) {
      response_.tool_calls.resize(i + 1);
      tool_started_.resize(i + 1, false);
    }
    ToolCall& tc = response_.tool_calls[i];
    if (auto id = text_of(call, "id"); !id.empty()) tc.id.assign(id);
    element fn;
    std::string_view arguments;
    if (call["function"].get(fn) == simdjson::SUCCESS && fn.is_object()) {
      if (auto name = text_of(fn, "name"); !name.empty()) tc.name.assign(name);
      arguments = text_of(fn, "arguments");
    }
    const bool first = !tool_started_[i];
    tool_started_[i] = true;
    if (first || !arguments.empty()) emit_tool_fragment(i, arguments, first, emit);
  }
  return std::nullopt;
}

std::optional<Error> StreamAccumulator::on_anthropic(std::string_view data, const Emit& emit, int http_status,
                                                     const Headers& headers) {
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
    response_.id.assign(text_of(message, "id"));
    response_.model.assign(text_of(message, "model"));
    simdjson::dom::object usage;
    if (message["usage"].get_object().get(usage) == simdjson::SUCCESS) {
      saw_usage_ = true;
      read_anthropic_usage(usage, anthropic_usage_);
      // message_start's output_tokens is a running count (often 1), not the bill.
      anthropic_usage_.output = {};
    }
  } else if (type == "content_block_start") {
    const std::int64_t index = int_of(root, "index");
    if (index < 0 || index > 1024) return malformed_stream("content block index out of range");
    const auto b = static_cast<std::size_t>(index);
    if (block_tool_.size() <= b) block_tool_.resize(b + 1, -1);
    element block;
    if (root["content_block"].get(block) != simdjson::SUCCESS) return malformed_stream("block without content_block");
    if (text_of(block, "type") == "tool_use") {
      block_tool_[b] = static_cast<int>(response_.tool_calls.size());
      response_.tool_calls.push_back(
          {.id = std::string(text_of(block, "id")), .name = std::string(text_of(block, "name"))});
      tool_started_.push_back(false);
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
      const auto t = static_cast<std::size_t>(block_tool_[index]);
      const bool first = !tool_started_[t];
      tool_started_[t] = true;
      emit_tool_fragment(t, text_of(delta, "partial_json"), first, emit);
    }
  } else if (type == "message_delta") {
    element delta;
    if (root["delta"].get(delta) == simdjson::SUCCESS) {
      if (auto reason = text_of(delta, "stop_reason"); !reason.empty()) response_.finish_reason.assign(reason);
    }
    simdjson::dom::object usage;
    if (root["usage"].get_object().get(usage) == simdjson::SUCCESS) {
      saw_usage_ = true;
      read_anthropic_usage(usage, anthropic_usage_);
    }
  } else if (type == "message_stop") {
    complete_ = true;
  }
  return std::nullopt;  // ping and unknown event types are ignored
}

Result<ChatResponse> StreamAccumulator::finish(int http_status, ReportedUsage* reported, bool cleanly) {
  if (reported) *reported = {};
  if (!complete_ && !(cleanly && !response_.finish_reason.empty())) {
    Error e = malformed_stream(response_.finish_reason.empty()
                                   ? "the stream ended before any finish reason or end marker (truncated)"
                                   : "the stream ended in the middle of an event");
    e.http_status = http_status;
    e.partial_content = response_.content;
    return e;
  }
  ReportedUsage usage = openai_usage_;
  if (provider_ == Provider::kAnthropic) {
    const AnthropicUsageParts& a = anthropic_usage_;
    usage = {.reported = saw_usage_,
             .prompt = a.prompt(),
             .completion = a.output,
             .cached = a.cache_read,
             .cache_write = a.cache_write};
  }
  for (ToolCall& call : response_.tool_calls) {
    if (provider_ == Provider::kAnthropic && call.arguments_json.empty()) call.arguments_json = "{}";
  }
  response_.usage = checked_usage(usage, 0, estimate_tokens(reply_bytes(response_)));
  if (reported) *reported = usage;
  return std::move(response_);
}

}  // namespace llmguard::internal
