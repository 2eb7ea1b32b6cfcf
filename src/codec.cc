#include "codec.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <optional>
#include <vector>

#include "classify.h"
#include "json_writer.h"
#include "providers/wire.h"
#include "providers/wire_api.h"
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

Error malformed(int status, std::string_view what) {
  Error e = make_error(ErrorCategory::kTransient, fmt::format("malformed response body: {}", what));
  e.http_status = status;
  e.hint = "the provider or a proxy returned a truncated or non-JSON body; it is retried";
  return e;
}

using simdjson::dom::element;

bool has_error_member(element root) {
  element e;
  if (root["error"].get(e) == simdjson::SUCCESS && !e.is_null()) return true;
  std::string_view type;
  return root["type"].get_string().get(type) == simdjson::SUCCESS && type == "error";
}

// Replies from this size up are offered to WireApi::read_long_reply first:
// below it a DOM parse costs too little for a second reader to pay off.
constexpr std::size_t kLongReply = 8 * 1024;

Result<ChatResponse> finished_reply(ChatResponse response, const ReportedUsage& usage, ReportedUsage* reported) {
  response.usage = checked_usage(usage, 0, estimate_tokens(reply_bytes(response)));
  if (reported) *reported = usage;
  return response;
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
  if (auto s = wire_api(provider).write_body(body, request, model, *extras, stream); !s.ok()) {
    return std::move(s).error();
  }
  return body;
}

Result<ChatResponse> parse_response_body(Provider provider, int http_status, const Headers& headers, std::string body,
                                         ReportedUsage* reported) {
  if (reported) *reported = {};
  if (body.empty()) return malformed(http_status, "empty body");
  const std::size_t size = body.size();
  body.reserve(size + simdjson::SIMDJSON_PADDING);
  const WireApi& api = wire_api(provider);
  if (size >= kLongReply) {
    ChatResponse response;
    ReportedUsage usage;
    if (api.read_long_reply(std::string_view(body.data(), size), response, usage)) {
      response.finish = normalised_finish(response.finish_reason, !response.tool_calls.empty());
      return finished_reply(std::move(response), usage, reported);
    }
  }
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
  const ReplyShape shape = api.read_reply(root, response, usage);
  if (shape != ReplyShape::kAnswer && has_error_member(root)) return classified(http_status, headers, body);
  if (shape == ReplyShape::kWrongType) return malformed(http_status, "a field has an unexpected type");
  if (shape == ReplyShape::kNoAnswer) return malformed(http_status, "no answer in the response");
  response.finish = normalised_finish(response.finish_reason, !response.tool_calls.empty());
  if (auto refused = api.withheld(root, response)) {
    refused->http_status = http_status;
    return std::move(*refused);
  }
  return finished_reply(std::move(response), usage, reported);
}

}  // namespace llmguard::internal
