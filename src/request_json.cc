#include "request_json.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cmath>

#include "text.h"

namespace llmguard::internal {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

Error request_error(std::string message) {
  return make_error(ErrorCategory::kBadRequest, fmt::format("request: {}", message));
}

// Each reader returns an error message, empty on success.
std::string read_string(element v, std::string_view where, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return fmt::format("{} must be a string", where);
  out.assign(s);
  return {};
}

std::string read_number(element v, std::string_view where, double min, double max, std::optional<double>& out) {
  double d = 0;
  if (v.get_double().get(d) != simdjson::SUCCESS) return fmt::format("{} must be a number", where);
  if (!std::isfinite(d) || d < min || d > max) return fmt::format("{} must be between {} and {}", where, min, max);
  out = d;
  return {};
}

// Text content: a string, null, or OpenAI's array of {"type": "text", "text"} parts.
std::string read_content(element v, std::string_view where, std::string& out) {
  if (v.is_null()) return {};
  if (v.is_string()) return read_string(v, where, out);
  array parts;
  if (v.get_array().get(parts) != simdjson::SUCCESS)
    return fmt::format("{} must be a string or an array of parts", where);
  std::size_t i = 0;
  for (element part : parts) {
    const std::string at = fmt::format("{}[{}]", where, i++);
    std::string_view type, text;
    if (part["type"].get_string().get(type) != simdjson::SUCCESS || type != "text") {
      return fmt::format("{} must be a text part ({{\"type\": \"text\", \"text\": ...}}): only text is sent", at);
    }
    if (part["text"].get_string().get(text) != simdjson::SUCCESS) return fmt::format("{}.text must be a string", at);
    out.append(text);
  }
  return {};
}

// A tool's or a tool call's "type": OpenAI's format has only "function".
std::string read_function_type(element v, std::string_view where) {
  std::string_view type;
  if (v.get_string().get(type) != simdjson::SUCCESS || type != "function") {
    return fmt::format("{}.type must be \"function\"", where);
  }
  return {};
}

std::string read_tool_call(element v, std::string_view where, ToolCall& out) {
  object call;
  if (v.get_object().get(call) != simdjson::SUCCESS) return fmt::format("{} must be an object", where);
  for (auto [key, value] : call) {
    if (key == "id") {
      if (auto e = read_string(value, fmt::format("{}.id", where), out.id); !e.empty()) return e;
    } else if (key == "type") {
      if (auto e = read_function_type(value, where); !e.empty()) return e;
    } else if (key == "function") {
      object function;
      if (value.get_object().get(function) != simdjson::SUCCESS)
        return fmt::format("{}.function must be an object", where);
      for (auto [fkey, fvalue] : function) {
        const std::string at = fmt::format("{}.function.{}", where, fkey);
        if (fkey == "name") {
          if (auto e = read_string(fvalue, at, out.name); !e.empty()) return e;
        } else if (fkey == "arguments") {
          // OpenAI sends the arguments as JSON text; an object is taken as written.
          if (fvalue.is_string()) {
            out.arguments_json.assign(fvalue.get_string().value_unsafe());
          } else if (fvalue.is_object()) {
            out.arguments_json = simdjson::minify(fvalue);
          } else {
            return fmt::format("{} must be a string of JSON (or an object)", at);
          }
        } else {
          return fmt::format("{} is not a member of a tool call's function", at);
        }
      }
    } else {
      return fmt::format("{}.{} is not a member of a tool call", where, key);
    }
  }
  if (out.id.empty()) return fmt::format("{}.id is required", where);
  if (out.name.empty()) return fmt::format("{}.function.name is required", where);
  return {};
}

std::string read_message(element v, std::string_view where, Message& out) {
  object m;
  if (v.get_object().get(m) != simdjson::SUCCESS) return fmt::format("{} must be an object", where);
  std::string role;
  if (element r; m["role"].get(r) != simdjson::SUCCESS) {
    return fmt::format("{}.role is required", where);
  } else if (auto e = read_string(r, fmt::format("{}.role", where), role); !e.empty()) {
    return e;
  }
  if (role == "system" || role == "developer") out.role = Role::kSystem;
  else if (role == "user") out.role = Role::kUser;
  else if (role == "assistant") out.role = Role::kAssistant;
  else if (role == "tool") out.role = Role::kTool;
  else return fmt::format("{}.role must be system, developer, user, assistant or tool, not \"{}\"", where, role);

  for (auto [key, value] : m) {
    const std::string at = fmt::format("{}.{}", where, key);
    if (key == "role") continue;
    if (key == "content") {
      if (auto e = read_content(value, at, out.content); !e.empty()) return e;
    } else if (key == "name") {
      if (auto e = read_string(value, at, out.name); !e.empty()) return e;
    } else if (key == "tool_calls" && out.role == Role::kAssistant) {
      array calls;
      if (value.get_array().get(calls) != simdjson::SUCCESS) return fmt::format("{} must be an array", at);
      std::size_t i = 0;
      for (element c : calls) {
        if (auto e = read_tool_call(c, fmt::format("{}[{}]", at, i++), out.tool_calls.emplace_back()); !e.empty()) {
          return e;
        }
      }
    } else if (key == "tool_call_id" && out.role == Role::kTool) {
      if (auto e = read_string(value, at, out.tool_call_id); !e.empty()) return e;
    } else if (key == "refusal" && value.is_null()) {
      // OpenAI's replies carry "refusal": null; histories copied from them do too.
    } else {
      return fmt::format("{} is not a member of a {} message", at, role);
    }
  }
  if (out.role == Role::kTool && out.tool_call_id.empty()) return fmt::format("{}.tool_call_id is required", where);
  return {};
}

std::string read_tool(element v, std::string_view where, Tool& out) {
  object tool;
  if (v.get_object().get(tool) != simdjson::SUCCESS) return fmt::format("{} must be an object", where);
  bool has_function = false;
  for (auto [key, value] : tool) {
    if (key == "type") {
      if (auto e = read_function_type(value, where); !e.empty()) return e;
    } else if (key == "function") {
      has_function = true;
      object function;
      if (value.get_object().get(function) != simdjson::SUCCESS)
        return fmt::format("{}.function must be an object", where);
      for (auto [fkey, fvalue] : function) {
        const std::string at = fmt::format("{}.function.{}", where, fkey);
        if (fkey == "name") {
          if (auto e = read_string(fvalue, at, out.name); !e.empty()) return e;
        } else if (fkey == "description") {
          if (auto e = read_string(fvalue, at, out.description); !e.empty()) return e;
        } else if (fkey == "parameters") {
          if (!fvalue.is_object()) return fmt::format("{} must be a JSON Schema object", at);
          out.parameters_json = simdjson::minify(fvalue);
        } else if (fkey == "strict") {
          if (!fvalue.is_bool()) return fmt::format("{} must be true or false", at);  // OpenAI's alone: not sent
        } else {
          return fmt::format("{} is not a member of a tool's function", at);
        }
      }
    } else {
      return fmt::format("{}.{} is not a member of a tool", where, key);
    }
  }
  if (!has_function || out.name.empty()) return fmt::format("{}.function.name is required", where);
  return {};
}

std::string read_tool_choice(element v, ToolChoice& out) {
  if (v.is_string()) {
    const std::string_view mode = v.get_string().value_unsafe();
    if (mode == "auto") out.mode = ToolChoice::Mode::kAuto;
    else if (mode == "none") out.mode = ToolChoice::Mode::kNone;
    else if (mode == "required") out.mode = ToolChoice::Mode::kRequired;
    else return fmt::format("tool_choice must be auto, none, required or a function, not \"{}\"", mode);
    return {};
  }
  std::string_view name;
  if (v.at_pointer("/function/name").get_string().get(name) != simdjson::SUCCESS || name.empty()) {
    return R"(tool_choice must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}})";
  }
  out.mode = ToolChoice::Mode::kFunction;
  out.function_name.assign(name);
  return {};
}

std::string read_request(object root, ParsedRequest& out) {
  ChatRequest& r = out.request;
  bool has_messages = false;
  for (auto [key, value] : root) {
    const std::string_view k = key;
    std::string e;
    if (k == "messages") {
      has_messages = true;
      array messages;
      if (value.get_array().get(messages) != simdjson::SUCCESS) return "messages must be an array";
      std::size_t i = 0;
      for (element m : messages) {
        e = read_message(m, fmt::format("messages[{}]", i++), r.messages.emplace_back());
        if (!e.empty()) return e;
      }
    } else if (k == "tools") {
      array tools;
      if (value.get_array().get(tools) != simdjson::SUCCESS) return "tools must be an array";
      std::size_t i = 0;
      for (element t : tools) {
        e = read_tool(t, fmt::format("tools[{}]", i++), r.tools.emplace_back());
        if (!e.empty()) return e;
      }
    } else if (k == "tool_choice") {
      e = read_tool_choice(value, r.tool_choice.emplace());
    } else if (k == "max_tokens" || k == "max_completion_tokens") {
      std::int64_t n = 0;
      if (value.get_int64().get(n) != simdjson::SUCCESS || n < 1)
        return fmt::format("{} must be a positive whole number", k);
      r.max_tokens = n;
    } else if (k == "temperature") {
      e = read_number(value, k, 0, 2, r.temperature);
    } else if (k == "top_p") {
      e = read_number(value, k, 0, 1, r.top_p);
    } else if (k == "stop") {
      if (value.is_string()) {
        r.stop.emplace_back(value.get_string().value_unsafe());
      } else if (array stops; value.get_array().get(stops) == simdjson::SUCCESS) {
        for (element s : stops) {
          if (e = read_string(s, "stop[]", r.stop.emplace_back()); !e.empty()) return e;
        }
      } else {
        return "stop must be a string or an array of strings";
      }
    } else if (k == "response_format") {
      if (!value.is_object()) return "response_format must be an object";
      r.response_format_json = simdjson::minify(value);
    } else if (k == "caller_tag") {
      e = read_string(value, k, r.caller_tag);
    } else if (k == "group") {
      e = read_string(value, k, out.group);
    } else if (k == "model") {
      std::string ignored;  // the configured chain chooses the model
      e = read_string(value, k, ignored);
    } else if (k == "stream") {
      if (value.get_bool().get(out.stream) != simdjson::SUCCESS) return "stream must be true or false";
    } else {
      return fmt::format("{} is not a member of a request", k);
    }
    if (!e.empty()) return e;
  }
  if (!has_messages || r.messages.empty()) return "messages is required and may not be empty";
  return {};
}

}  // namespace

Result<ParsedRequest> parse_openai_request(std::string_view json) {
  // Said plainly, rather than as simdjson's "empty" error, and never handed to the parser.
  if (trim(json).empty()) return request_error("is empty: a JSON object with \"messages\" was expected");
  simdjson::dom::parser parser;
  element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root); error != simdjson::SUCCESS) {
    return request_error(fmt::format("not valid JSON ({})", simdjson::error_message(error)));
  }
  object members;
  if (root.get_object().get(members) != simdjson::SUCCESS) return request_error("must be a JSON object");
  ParsedRequest out;
  if (auto e = read_request(members, out); !e.empty()) return request_error(std::move(e));
  return out;
}

}  // namespace llmguard::internal
