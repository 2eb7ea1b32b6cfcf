#include "codec.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <optional>
#include <vector>

#include "classify.h"
#include "json_writer.h"
#include "text.h"
#include "usage_json.h"

namespace llmguard::internal {
namespace {

Error bad_input(std::string message) { return make_error(ErrorCategory::kBadRequest, std::move(message)); }

// `field` is only called on failure: naming the field costs a format call,
// which valid input (every call) should not pay.
template <typename FieldName>
Status check_text(std::string_view text, FieldName&& field) {
  if (auto at = find_invalid_utf8(text)) {
    return bad_input(fmt::format("{} is not valid UTF-8 (bad byte at offset {})", field(), *at));
  }
  return ok_status();
}

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kSystem:
      return "system";
    case Role::kUser:
      return "user";
    case Role::kAssistant:
      return "assistant";
    case Role::kTool:
      return "tool";
  }
  return "user";
}

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

Result<Extras> parse_extras(std::string_view json) {
  Extras extras;
  if (json.empty()) return extras;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::object object;
  if (parser.parse(padded).get_object().get(object) != simdjson::SUCCESS) {
    return bad_input("extra_body_json must be a JSON object");
  }
  for (auto field : object) {
    extras.members.emplace_back(std::string(field.key), simdjson::minify(field.value));
  }
  return extras;
}

// Validates every JSON- and text-typed field of the request once, so the
// writers below can stream without error paths.
Status validate_request(const ChatRequest& request) {
  if (request.messages.empty()) return bad_input("messages is empty");
  for (std::size_t i = 0; i < request.messages.size(); ++i) {
    const Message& m = request.messages[i];
    auto named = [i](std::string_view member) {
      return [i, member] { return fmt::format("messages[{}].{}", i, member); };
    };
    if (auto s = check_text(m.content, named("content")); !s.ok()) return s;
    if (auto s = check_text(m.name, named("name")); !s.ok()) return s;
    if (auto s = check_text(m.tool_call_id, named("tool_call_id")); !s.ok()) return s;
    for (std::size_t j = 0; j < m.tool_calls.size(); ++j) {
      const ToolCall& c = m.tool_calls[j];
      auto field = [i, j] { return fmt::format("messages[{}].tool_calls[{}]", i, j); };
      for (auto* text : {&c.id, &c.name, &c.arguments_json}) {
        if (auto s = check_text(*text, field); !s.ok()) return s;
      }
    }
  }
  for (std::size_t i = 0; i < request.tools.size(); ++i) {
    const Tool& t = request.tools[i];
    if (t.name.empty()) return bad_input(fmt::format("tools[{}].name is empty", i));
    auto field = [i] { return fmt::format("tools[{}]", i); };
    if (auto s = check_text(t.name, field); !s.ok()) return s;
    if (auto s = check_text(t.description, field); !s.ok()) return s;
    if (auto s = validate_json(t.parameters_json, field() + ".parameters_json"); !s.ok()) return s;
  }
  for (std::size_t i = 0; i < request.stop.size(); ++i) {
    if (auto s = check_text(request.stop[i], [i] { return fmt::format("stop[{}]", i); }); !s.ok()) return s;
  }
  if (request.tool_choice && request.tool_choice->mode == ToolChoice::Mode::kFunction) {
    if (request.tool_choice->function_name.empty()) return bad_input("tool_choice.function_name is empty");
    if (auto s = check_text(request.tool_choice->function_name, [] { return "tool_choice.function_name"; }); !s.ok()) {
      return s;
    }
  }
  if (!request.response_format_json.empty()) {
    if (auto s = validate_json(request.response_format_json, "response_format_json"); !s.ok()) return s;
  }
  if (request.max_tokens && *request.max_tokens <= 0) return bad_input("max_tokens must be positive");
  return ok_status();
}

void write_openai_messages(JsonWriter& w, const ChatRequest& request) {
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

void write_openai_body(std::string& out, const ChatRequest& request, std::string_view model, const Extras& extras,
                       bool stream) {
  JsonWriter w(out);
  w.begin_object();
  if (!extras.has("model")) w.key("model").string(model);
  write_openai_messages(w, request);
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
    switch (request.tool_choice->mode) {
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
        w.key("name").string(request.tool_choice->function_name).end_object().end_object();
        break;
    }
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
}

// The Messages API's turns: system messages go to "system", tool results
// are user turns, an assistant's tool calls are tool_use blocks.
Status write_anthropic_messages(JsonWriter& w, const std::vector<Message>& messages) {
  w.key("messages").begin_array();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == Role::kSystem) continue;
    if (m.role == Role::kTool) {
      w.begin_object().key("role").string("user").key("content").begin_array();
      w.begin_object().key("type").string("tool_result").key("tool_use_id").string(m.tool_call_id);
      w.key("content").string(m.content).end_object().end_array().end_object();
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

Status write_anthropic_body(std::string& out, const ChatRequest& request, std::string_view model, const Extras& extras,
                            bool stream) {
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
  if (auto written = write_anthropic_messages(w, request.messages); !written.ok()) return written;
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
    w.key("tool_choice").begin_object().key("type");
    switch (request.tool_choice->mode) {
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
        w.string("tool").key("name").string(request.tool_choice->function_name);
        break;
    }
    w.end_object();
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

Error classified(int status, const Headers& headers, std::string_view body) {
  Error e = classify_response(status, headers, body);
  e.hint = hint_for(e);
  return e;
}

Error malformed(int status, std::string_view what) {
  Error e = make_error(ErrorCategory::kTransient, fmt::format("malformed response body: {}", what));
  e.http_status = status;
  e.hint = "the provider or a proxy returned a truncated or non-JSON body; it is retried";
  return e;
}

using simdjson::dom::element;

// Field readers over simdjson's DOM. The DOM front end validates the whole
// document (on-demand in simdjson 3.0 accepts a body cut before its final
// brace) and picks the fastest kernel at run time. Absent and null fields
// read as empty; a present field of the wrong type makes the body malformed.
bool read_text(element parent, std::string_view key, std::string& out) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS || v.is_null()) return true;
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return false;
  out.assign(s);
  return true;
}

// Returns the object at `key`, or nullopt when absent or null.
std::optional<element> child_object(element parent, std::string_view key, bool& ok) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
  if (!v.is_object()) ok = false;
  return ok ? std::optional<element>(v) : std::nullopt;
}

std::optional<simdjson::dom::array> child_array(element parent, std::string_view key, bool& ok) {
  element v;
  if (parent[key].get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
  simdjson::dom::array a;
  if (v.get_array().get(a) != simdjson::SUCCESS) {
    ok = false;
    return std::nullopt;
  }
  return a;
}

bool read_openai(element root, ChatResponse& r, ReportedUsage& usage, bool& saw_choices) {
  bool ok = read_text(root, "id", r.id) && read_text(root, "model", r.model);
  read_openai_style_usage(root, usage);
  auto choices = child_array(root, "choices", ok);
  if (!ok || !choices || choices->size() == 0) return ok;
  saw_choices = true;
  element choice = choices->at(0).value_unsafe();  // n > 1: the first is the answer
  if (!choice.is_object()) return false;
  ok = read_text(choice, "finish_reason", r.finish_reason);
  auto message = child_object(choice, "message", ok);
  if (!ok || !message) return false;
  ok = read_text(*message, "content", r.content) && read_text(*message, "refusal", r.refusal);
  if (auto calls = child_array(*message, "tool_calls", ok)) {
    for (element call : *calls) {
      if (!call.is_object()) return false;
      ToolCall tc;
      ok = ok && read_text(call, "id", tc.id);
      if (auto fn = child_object(call, "function", ok)) {
        ok = ok && read_text(*fn, "name", tc.name) && read_text(*fn, "arguments", tc.arguments_json);
      }
      r.tool_calls.push_back(std::move(tc));
    }
  }
  return ok;
}

bool read_anthropic(element root, ChatResponse& r, ReportedUsage& usage, bool& saw_content) {
  bool ok = read_text(root, "id", r.id) && read_text(root, "model", r.model) &&
            read_text(root, "stop_reason", r.finish_reason);
  // A usage of the wrong type is no usage: the reply is not lost over it.
  simdjson::dom::object usage_object;
  if (root["usage"].get_object().get(usage_object) == simdjson::SUCCESS) {
    AnthropicUsageParts parts;
    read_anthropic_usage(usage_object, parts);
    // Anthropic counts cache reads and writes apart from input_tokens; the
    // common Usage counts every prompt token in prompt_tokens.
    usage = {.reported = true,
             .prompt = parts.prompt(),
             .completion = parts.output,
             .cached = parts.cache_read,
             .cache_write = parts.cache_write};
  }
  auto blocks = child_array(root, "content", ok);
  if (!ok || !blocks) return ok;
  saw_content = true;
  for (element block : *blocks) {
    if (!block.is_object()) return false;
    std::string type;
    if (!read_text(block, "type", type)) return false;
    if (type == "text") {
      std::string text;
      if (!read_text(block, "text", text)) return false;
      r.content += text;
    } else if (type == "tool_use") {
      ToolCall tc;
      if (!read_text(block, "id", tc.id) || !read_text(block, "name", tc.name)) return false;
      element input_value;
      if (block["input"].get(input_value) == simdjson::SUCCESS) tc.arguments_json = simdjson::minify(input_value);
      r.tool_calls.push_back(std::move(tc));
    }
  }
  return true;
}

bool has_error_member(element root) {
  element e;
  if (root["error"].get(e) == simdjson::SUCCESS && !e.is_null()) return true;
  std::string_view type;
  return root["type"].get_string().get(type) == simdjson::SUCCESS && type == "error";
}

}  // namespace

Result<std::string> build_request_body(Provider provider, const ChatRequest& request, std::string_view model,
                                       bool stream, std::optional<std::int64_t> default_max_tokens) {
  if (auto s = validate_request(request); !s.ok()) return std::move(s).error();
  if (!request.max_tokens && default_max_tokens) {
    ChatRequest bounded = request;  // rare path: only under a budget without max_tokens
    bounded.max_tokens = default_max_tokens;
    return build_request_body(provider, bounded, model, stream, std::nullopt);
  }
  auto extras = parse_extras(request.extra_body_json);
  if (!extras.ok()) return std::move(extras).error();
  // Sized once: growing the string while writing copied it several times.
  std::size_t estimate = 256 + request.extra_body_json.size() + request.response_format_json.size();
  for (const Message& m : request.messages) {
    estimate += 48 + m.content.size() + m.content.size() / 8;  // envelope, and room for escapes
    for (const ToolCall& call : m.tool_calls) estimate += 96 + call.arguments_json.size() * 2;
  }
  for (const Tool& tool : request.tools) estimate += 96 + tool.description.size() + tool.parameters_json.size();
  std::string body;
  body.reserve(estimate);
  switch (provider) {
    case Provider::kOpenAI:
    case Provider::kAzure:
      write_openai_body(body, request, model, *extras, stream);
      break;
    case Provider::kAnthropic:
      if (auto s = write_anthropic_body(body, request, model, *extras, stream); !s.ok()) return std::move(s).error();
      break;
  }
  return body;
}

Result<ChatResponse> parse_response_body(Provider provider, int http_status, const Headers& headers, std::string body,
                                         ReportedUsage* reported) {
  if (reported) *reported = {};
  if (body.empty()) return malformed(http_status, "empty body");
  const std::size_t size = body.size();
  body.reserve(size + simdjson::SIMDJSON_PADDING);
  // One parser per loop thread, reused: its buffers grow once.
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto ec = parse_allowing_out_of_range_numbers(parser, body.data(), size, false, root); ec != simdjson::SUCCESS) {
    // A web page where JSON belongs (base_url pointing at a website or a
    // login portal) is no truncated reply: say what answered.
    if (trim(body).starts_with('<')) return classified(http_status, headers, body);
    return malformed(http_status, simdjson::error_message(ec));
  }
  if (!root.is_object()) return malformed(http_status, "not a JSON object");
  ChatResponse response;
  ReportedUsage usage;
  bool saw_answer = false;
  const bool ok = provider == Provider::kAnthropic ? read_anthropic(root, response, usage, saw_answer)
                                                   : read_openai(root, response, usage, saw_answer);
  if (!saw_answer && has_error_member(root)) return classified(http_status, headers, body);
  if (!ok) return malformed(http_status, "a field has an unexpected type");
  if (!saw_answer) return malformed(http_status, "no choices in the response");
  response.usage = checked_usage(usage, 0, estimate_tokens(reply_bytes(response)));
  if (reported) *reported = usage;
  return response;
}

}  // namespace llmguard::internal
