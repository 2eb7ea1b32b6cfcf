// Amazon Bedrock's Converse API (converse / converse-stream): one body for
// every model Bedrock hosts, AWS SigV4 per attempt (or a Bedrock API key as a
// bearer token), typed exceptions in x-amzn-errortype, and streams in AWS's
// binary event-stream framing.
#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <map>

#include "classify.h"
#include "json_writer.h"
#include "providers/eventstream.h"
#include "providers/sigv4.h"
#include "providers/wire.h"
#include "providers/wire_api.h"
#include "text.h"
#include "usage_json.h"

namespace llmguard::internal {
namespace {

using simdjson::dom::element;

constexpr const char* kAccessKeyEnv = "AWS_ACCESS_KEY_ID";
constexpr const char* kSecretKeyEnv = "AWS_SECRET_ACCESS_KEY";
constexpr const char* kSessionTokenEnv = "AWS_SESSION_TOKEN";
constexpr const char* kBearerEnv = "AWS_BEARER_TOKEN_BEDROCK";

// The target's signing identity, read once at create().
class SigningState final : public TargetState {
 public:
  SigningState(aws::AwsCredentials credentials, std::string region)
      : credentials_(std::move(credentials)), region_(std::move(region)) {}
  const aws::AwsCredentials& credentials() const { return credentials_; }
  const std::string& region() const { return region_; }

 private:
  aws::AwsCredentials credentials_;
  std::string region_;
};

std::string region_of(const Target& t) {
  return t.region.empty() ? first_env({"AWS_REGION", "AWS_DEFAULT_REGION"}) : t.region;
}

bool is_region(std::string_view region) {
  if (region.empty()) return false;
  for (char c : region) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// Stop reasons that mean a guardrail or the model's own filter withheld or cut the reply.
bool is_filtered(std::string_view stop_reason) {
  return stop_reason == "guardrail_intervened" || stop_reason == "content_filtered";
}

Error filtered_error(std::string_view stop_reason) {
  Error e =
      make_error(ErrorCategory::kContentFilter, fmt::format("Bedrock withheld the reply: stopReason {}", stop_reason));
  e.provider_code = std::string(stop_reason);
  e.hint = hint_for(e);
  return e;
}

// A tool result is sent as a JSON document when it is a JSON object, else as text.
void write_tool_result(JsonWriter& w, const Message& result) {
  const std::string_view text = trim(result.content);
  const bool is_object = text.starts_with('{') && validate_json(text, "").ok();
  w.begin_object().key("toolResult").begin_object().key("toolUseId").string(result.tool_call_id);
  w.key("content").begin_array().begin_object();
  if (is_object) w.key("json").raw(text);
  else w.key("text").string(result.content);
  w.end_object().end_array();
  if (result.is_error) w.key("status").string("error");
  w.end_object().end_object();
}

// Converse wants the roles to alternate: consecutive turns of one role (a
// tool result turn, which is a user turn, and the user's next words; or
// parallel calls' results) go out as one message with their blocks in order.
Status write_messages(JsonWriter& w, const std::vector<Message>& messages) {
  w.key("messages").begin_array();
  std::string_view open_role;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == Role::kSystem) continue;
    const std::string_view role = m.role == Role::kAssistant ? "assistant" : "user";
    if (role != open_role) {
      if (!open_role.empty()) w.end_array().end_object();
      w.begin_object().key("role").string(role).key("content").begin_array();
      open_role = role;
    }
    if (m.role == Role::kTool) {
      write_tool_result(w, m);
      continue;
    }
    if (!m.content.empty() || m.tool_calls.empty()) w.begin_object().key("text").string(m.content).end_object();
    for (std::size_t j = 0; j < m.tool_calls.size(); ++j) {
      const ToolCall& c = m.tool_calls[j];
      const std::string_view input = c.arguments_json.empty() ? std::string_view("{}") : c.arguments_json;
      if (auto s = validate_json(input, fmt::format("messages[{}].tool_calls[{}].arguments_json", i, j)); !s.ok()) {
        return s;
      }
      w.begin_object().key("toolUse").begin_object().key("toolUseId").string(c.id).key("name").string(c.name);
      w.key("input").raw(input).end_object().end_object();
    }
  }
  if (!open_role.empty()) w.end_array().end_object();
  w.end_array();
  return ok_status();
}

void write_tool_config(JsonWriter& w, const ChatRequest& request) {
  w.key("toolConfig").begin_object().key("tools").begin_array();
  for (const Tool& t : request.tools) {
    w.begin_object().key("toolSpec").begin_object().key("name").string(t.name);
    if (!t.description.empty()) w.key("description").string(t.description);
    w.key("inputSchema").begin_object().key("json").raw(t.parameters_json).end_object();
    w.end_object().end_object();
  }
  w.end_array();
  if (request.tool_choice && request.tool_choice->mode != ToolChoice::Mode::kAuto) {
    w.key("toolChoice").begin_object();
    if (request.tool_choice->mode == ToolChoice::Mode::kRequired) {
      w.key("any").begin_object().end_object();
    } else {
      w.key("tool").begin_object().key("name").string(request.tool_choice->function_name).end_object();
    }
    w.end_object();
  }
  w.end_object();
}

// Converse refuses toolUse and toolResult blocks without a toolConfig, and
// has no "none" choice. A turn that may call no tool (tool_choice none, or a
// request without tools after a tool exchange) offers this one tool alone,
// which says so; the caller's tools stay out of reach.
void write_no_tool_config(JsonWriter& w) {
  w.key("toolConfig").begin_object().key("tools").begin_array();
  w.begin_object().key("toolSpec").begin_object().key("name").string("no_tools_this_turn");
  w.key("description").string("No tool may be called on this turn. Answer in text.");
  w.key("inputSchema").begin_object().key("json").raw(R"({"type":"object","properties":{}})").end_object();
  w.end_object().end_object().end_array().end_object();
}

bool uses_tools(const std::vector<Message>& messages) {
  return std::any_of(messages.begin(), messages.end(),
                     [](const Message& m) { return m.role == Role::kTool || !m.tool_calls.empty(); });
}

Status write_converse(std::string& out, const ChatRequest& request, const Extras& extras) {
  JsonWriter w(out);
  w.begin_object();
  if (auto written = write_messages(w, request.messages); !written.ok()) return written;
  if (!extras.has("system")) {
    bool any = false;
    for (const Message& m : request.messages) {
      if (m.role != Role::kSystem) continue;
      if (!any) w.key("system").begin_array();
      any = true;
      w.begin_object().key("text").string(m.content).end_object();
    }
    if (any) w.end_array();
  }
  if (!extras.has("inferenceConfig") &&
      (request.max_tokens || request.temperature || request.top_p || !request.stop.empty())) {
    w.key("inferenceConfig").begin_object();
    if (request.max_tokens) w.key("maxTokens").number(*request.max_tokens);
    if (request.temperature) w.key("temperature").number(*request.temperature);
    if (request.top_p) w.key("topP").number(*request.top_p);
    if (!request.stop.empty()) {
      w.key("stopSequences").begin_array();
      for (const auto& s : request.stop) w.string(s);
      w.end_array();
    }
    w.end_object();
  }
  const bool no_tools = request.tool_choice && request.tool_choice->mode == ToolChoice::Mode::kNone;
  if (!extras.has("toolConfig")) {
    if (!request.tools.empty() && !no_tools) {
      write_tool_config(w, request);
    } else if (uses_tools(request.messages)) {
      write_no_tool_config(w);
    }
  }
  for (const auto& [k, v] : extras.members) w.key(k).raw(v);
  w.end_object();
  return ok_status();
}

// Reads output.message.content's blocks: text and toolUse (whole inputs).
bool read_content(element message, ChatResponse& r) {
  bool ok = true;
  auto blocks = child_array(message, "content", ok);
  if (!ok) return false;
  if (!blocks) return true;
  for (element block : *blocks) {
    if (!block.is_object()) return false;
    std::string_view text;
    if (block["text"].get_string().get(text) == simdjson::SUCCESS) r.content.append(text);
    element use;
    if (block["toolUse"].get(use) == simdjson::SUCCESS && use.is_object()) {
      element input;
      std::string arguments =
          use["input"].get(input) == simdjson::SUCCESS && !input.is_null() ? simdjson::minify(input) : "{}";
      r.tool_calls.push_back({.id = std::string(text_of(use, "toolUseId")),
                              .name = std::string(text_of(use, "name")),
                              .arguments_json = std::move(arguments)});
    }
  }
  return true;
}

// ConverseStream: event-stream messages whose payloads are JSON events.
class BedrockStreamDecoder final : public StreamDecoder {
 public:
  std::optional<Error> feed(std::string_view bytes, const Emit& emit, int http_status, const Headers& headers) override;

 protected:
  ReportedUsage final_usage() override { return usage_; }
  bool has_partial_frame() const override { return frames_.has_partial_message(); }

 private:
  std::optional<Error> on_message(const aws::EventMessage& message, const Emit& emit, int http_status);
  std::optional<Error> on_event(std::string_view type, element event, const Emit& emit, int http_status);
  std::optional<Error> exception(const aws::EventMessage& message, int http_status);

  aws::EventStreamDecoder frames_;
  std::map<std::int64_t, std::size_t> block_tool_;  // content block index -> tool call index
  ReportedUsage usage_;
};

std::optional<Error> BedrockStreamDecoder::feed(std::string_view bytes, const Emit& emit, int http_status,
                                                const Headers& /*headers*/) {
  std::optional<Error> error;
  const bool ok = frames_.feed(bytes, [&](const aws::EventMessage& message) {
    error = on_message(message, emit, http_status);
    return !error.has_value();
  });
  if (!ok && !error) {
    error = malformed_stream(fmt::format("event-stream framing broken ({})", aws::to_string(frames_.error())));
    error->http_status = http_status;
    error->partial_content = reply_.content;
  }
  return error;
}

// An exception message (throttlingException, validationException, ...) or an
// error message (:error-code, :error-message), as headers and a body the
// classifier reads as it reads Bedrock's HTTP errors.
std::optional<Error> BedrockStreamDecoder::exception(const aws::EventMessage& message, int http_status) {
  Headers headers;
  std::string_view type = message.string_header(aws::kExceptionTypeHeader);
  if (type.empty()) type = message.string_header(":error-code");
  if (!type.empty()) headers.emplace_back("x-amzn-errortype", std::string(type));
  std::string body(message.payload);
  if (trim(body).empty()) {
    std::string out;
    JsonWriter w(out);
    w.begin_object().key("message").string(message.string_header(":error-message")).end_object();
    body = std::move(out);
  }
  Error e = classified(http_status, headers, body);
  e.http_status = http_status;
  e.partial_content = reply_.content;
  return e;
}

std::optional<Error> BedrockStreamDecoder::on_message(const aws::EventMessage& message, const Emit& emit,
                                                      int http_status) {
  const std::string_view kind = message.string_header(aws::kMessageTypeHeader);
  if (kind == "exception" || kind == "error") return exception(message, http_status);
  if (kind != "event") return std::nullopt;  // none other is defined; skipped like an unknown event
  thread_local simdjson::dom::parser parser;
  element root;
  const std::string_view payload = message.payload;
  if (parse_allowing_out_of_range_numbers(parser, payload.data(), payload.size(), true, root) != simdjson::SUCCESS ||
      !root.is_object()) {
    Error e = malformed_stream("an event's payload is not a JSON object");
    e.partial_content = reply_.content;
    return e;
  }
  return on_event(message.string_header(aws::kEventTypeHeader), root, emit, http_status);
}

std::optional<Error> BedrockStreamDecoder::on_event(std::string_view type, element event, const Emit& emit,
                                                    int http_status) {
  if (type == "contentBlockStart") {
    element use;
    if (event.at_pointer("/start/toolUse").get(use) == simdjson::SUCCESS && use.is_object()) {
      const std::size_t t = reply_.tool_calls.size();
      block_tool_[int_of(event, "contentBlockIndex")] = t;
      ToolCall& call = tool_call(t);
      call.id.assign(text_of(use, "toolUseId"));
      call.name.assign(text_of(use, "name"));
    }
  } else if (type == "contentBlockDelta") {
    element delta;
    if (event["delta"].get(delta) != simdjson::SUCCESS || !delta.is_object()) {
      return malformed_stream("contentBlockDelta without a delta");
    }
    std::string_view text;
    if (delta["text"].get_string().get(text) == simdjson::SUCCESS) emit_text(text, emit);
    element use;
    if (delta["toolUse"].get(use) == simdjson::SUCCESS && use.is_object()) {
      const auto it = block_tool_.find(int_of(event, "contentBlockIndex"));
      if (it == block_tool_.end()) return malformed_stream("a toolUse delta for a block that is not a tool call");
      emit_tool_fragment(it->second, text_of(use, "input"), emit);
    }
  } else if (type == "messageStop") {
    if (auto reason = text_of(event, "stopReason"); !reason.empty()) {
      reply_.finish_reason.assign(reason);
      if (is_filtered(reason)) {
        Error e = filtered_error(reason);
        e.http_status = http_status;
        e.partial_content = reply_.content;
        return e;
      }
    }
  } else if (type == "metadata") {
    simdjson::dom::object usage;
    if (event["usage"].get_object().get(usage) == simdjson::SUCCESS) {
      read_bedrock_usage(usage, usage_);
      mark_usage_seen();
    }
    if (!reply_.finish_reason.empty()) mark_complete();  // the last event, after messageStop
  }
  return std::nullopt;  // messageStart, contentBlockStop and events added later say nothing we need
}

class BedrockApi final : public WireApi {
 public:
  std::string_view name() const override { return "bedrock"; }

  Status fill_defaults(const Target& target, std::string& base_url, std::string& key) const override {
    if (key.empty() && target.api_key_env.empty()) key = first_env({kBearerEnv});
    const std::string region = region_of(target);
    auto missing = [&](std::string_view what) {
      return Status(
          make_error(ErrorCategory::kBadRequest, fmt::format("target \"{}\": bedrock needs {}", target.name, what)));
    };
    // A Bedrock API key goes to a URL as given; SigV4 signs for a region.
    if ((base_url.empty() || key.empty()) && region.empty())
      return missing("region (or AWS_REGION / AWS_DEFAULT_REGION)");
    if (!region.empty() && !is_region(region)) {
      return missing("a region of lower-case letters, digits and '-' (like us-east-1)");
    }
    if (key.empty()) {
      const bool id = !first_env({kAccessKeyEnv}).empty();
      const bool secret = !first_env({kSecretKeyEnv}).empty();
      if (!id || !secret) {
        return missing(fmt::format("AWS credentials: {} not set (or an api_key, or {})",
                                   !id && !secret ? "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are"
                                   : !id          ? "AWS_ACCESS_KEY_ID is"
                                                  : "AWS_SECRET_ACCESS_KEY is",
                                   kBearerEnv));
      }
    }
    if (base_url.empty()) base_url = fmt::format("https://bedrock-runtime.{}.amazonaws.com", region);
    return ok_status();
  }

  Endpoint endpoint(const Target& target, std::string_view root, bool keyed) const override {
    Endpoint e;
    const std::string model_url = fmt::format("{}/model/{}", root, aws::uri_encoded(target.model));
    e.url = model_url + "/converse";
    e.stream_url = model_url + "/converse-stream";
    if (!keyed) {  // a Bedrock API key is a bearer token (credential_headers); without one, SigV4
      e.state = std::make_shared<SigningState>(aws::AwsCredentials{.access_key_id = first_env({kAccessKeyEnv}),
                                                                   .secret_access_key = first_env({kSecretKeyEnv}),
                                                                   .session_token = first_env({kSessionTokenEnv})},
                                               region_of(target));
    }
    // Set here rather than by the transport: the signature covers it.
    e.headers.emplace_back("content-type", "application/json");
    return e;
  }

  Headers credential_headers(std::string_view key) const override {
    return {{"authorization", fmt::format("Bearer {}", key)}};
  }

  std::span<const std::string_view> credential_envs() const override {
    static constexpr std::string_view kEnvs[] = {kAccessKeyEnv, kSecretKeyEnv, kSessionTokenEnv, kBearerEnv};
    return kEnvs;
  }

  Status prepare_attempt(const TargetState* state, HttpRequest& request,
                         std::chrono::system_clock::time_point now) const override {
    const auto* signing = static_cast<const SigningState*>(state);  // only endpoint() makes one
    if (!signing) return ok_status();                               // a bearer key: nothing to sign
    // scheme://host[:port]/path[?query]; libcurl leaves the scheme's default port out of Host.
    std::string_view url = request.url;
    const std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
      return Status(make_error(ErrorCategory::kBadRequest, "bedrock: the request URL has no scheme"));
    }
    const bool https = istarts_with(url, "https://");
    std::string_view rest = url.substr(scheme_end + 3);
    const std::size_t path_at = rest.find_first_of("/?");
    std::string_view host = rest.substr(0, path_at);
    std::string_view path = path_at == std::string_view::npos ? std::string_view() : rest.substr(path_at);
    std::string_view query;
    if (const std::size_t q = path.find('?'); q != std::string_view::npos) {
      query = path.substr(q + 1);
      path = path.substr(0, q);
    }
    if (host.ends_with(https ? ":443" : ":80")) host.remove_suffix(https ? 4 : 3);
    aws::SignableRequest signable{.method = "POST", .host = host, .path = path, .query = query, .body = request.body};
    for (const auto& [name, value] : request.headers) {
      if (iequals(name, "content-type")) signable.headers.emplace_back(name, value);
    }
    auto added = aws::sign_v4(signable, signing->credentials(), signing->region(), "bedrock", absl::FromChrono(now));
    if (!added.ok()) return std::move(added).error();
    for (auto& [name, value] : *added) request.headers.emplace_back(std::move(name), std::move(value));
    return ok_status();
  }

  Status write_body(std::string& out, const ChatRequest& request, std::string_view /*model*/, const Extras& extras,
                    bool /*stream*/) const override {
    return write_converse(out, request, extras);  // the model and streaming are in the URL
  }

  ReplyShape read_reply(element root, ChatResponse& r, ReportedUsage& usage) const override {
    if (!read_text(root, "stopReason", r.finish_reason)) return ReplyShape::kWrongType;
    simdjson::dom::object usage_object;
    if (root["usage"].get_object().get(usage_object) == simdjson::SUCCESS) read_bedrock_usage(usage_object, usage);
    bool ok = true;
    auto output = child_object(root, "output", ok);
    if (!ok) return ReplyShape::kWrongType;
    std::optional<element> message;
    if (output) message = child_object(*output, "message", ok);
    if (!ok) return ReplyShape::kWrongType;
    if (!message) return is_filtered(r.finish_reason) ? ReplyShape::kAnswer : ReplyShape::kNoAnswer;
    return read_content(*message, r) ? ReplyShape::kAnswer : ReplyShape::kWrongType;
  }

  std::optional<Error> withheld(element /*root*/, const ChatResponse& reply) const override {
    if (is_filtered(reply.finish_reason)) return filtered_error(reply.finish_reason);
    return std::nullopt;
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override { return std::make_unique<BedrockStreamDecoder>(); }
};

}  // namespace

const WireApi& bedrock_wire_api() {
  static const BedrockApi api;
  return api;
}

}  // namespace llmguard::internal
