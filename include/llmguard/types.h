// Value types of a chat call: what the caller sends and what comes back.
// All are plain structs, cheap to build in code; copying them copies the text.
#ifndef LLMGUARD_TYPES_H_
#define LLMGUARD_TYPES_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmguard/error.h"

namespace llmguard {

enum class Role : std::uint8_t { kSystem, kUser, kAssistant, kTool };

// A function call the model asked for. `arguments_json` is the JSON text the
// model produced, kept as sent (it is often, but not always, valid JSON).
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments_json;
};

struct ChatResponse;

struct Message {
  Role role = Role::kUser;
  std::string content;               // UTF-8 text
  std::vector<ToolCall> tool_calls;  // assistant turns that called tools
  std::string tool_call_id;          // for Role::kTool: the call answered
  bool is_error = false;             // for Role::kTool: the tool failed and `content` says how
  std::string name;                  // optional participant name

  static Message system(std::string text);
  static Message user(std::string text);
  static Message assistant(std::string text);
  // A reply as the assistant's turn, its text and tool calls, for the next
  // request of an agent loop:
  //   request.messages.push_back(Message::assistant(*reply));
  //   for (const ToolCall& call : reply->tool_calls)
  //     request.messages.push_back(Message::tool_result(call.id, run(call)));
  static Message assistant(const ChatResponse& reply);
  static Message tool_result(std::string tool_call_id, std::string text);
  static Message tool_error(std::string tool_call_id, std::string text);
};

// A tool the model may call. `parameters_json` is a JSON Schema object.
struct Tool {
  std::string name;
  std::string description;
  std::string parameters_json = R"({"type":"object","properties":{}})";
};

struct ToolChoice {
  enum class Mode : std::uint8_t { kAuto, kNone, kRequired, kFunction };
  Mode mode = Mode::kAuto;
  std::string function_name;  // for Mode::kFunction
};

struct ChatRequest {
  std::vector<Message> messages;
  std::vector<Tool> tools;
  std::optional<ToolChoice> tool_choice;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> max_tokens;
  std::vector<std::string> stop;
  // JSON text sent as `response_format`, e.g. R"({"type":"json_object"})".
  std::string response_format_json;
  // Free-form label of the caller (an agent, a user, a feature) used for
  // accounting and fair queuing; never sent upstream.
  std::string caller_tag;
  // A JSON object whose members are added to the provider request body as-is
  // (provider-specific extras such as "seed" or "reasoning_effort").
  std::string extra_body_json;
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_tokens = 0;       // part of prompt_tokens read from cache
  std::int64_t cache_write_tokens = 0;  // part of prompt_tokens written to cache
  std::int64_t reasoning_tokens = 0;    // part of completion_tokens
  std::int64_t total_tokens = 0;
  bool estimated = false;  // true when the provider did not report usage
};

// One piece of a streamed reply, passed to CallOptions::on_delta as it
// arrives. The views are valid only during the callback.
struct StreamDelta {
  enum class Kind : std::uint8_t {
    kText,      // `text` is new assistant text
    kToolCall,  // `text` is a fragment of tool call `tool_index`'s arguments
    // The attempt that produced the deltas so far failed and the call starts
    // over (only with CallOptions::restart_stream_on_failure): discard them.
    kRestart,
  };
  Kind kind = Kind::kText;
  std::string_view text;
  int tool_index = 0;
  std::string_view tool_call_id;  // set on a tool call's first fragment
  std::string_view tool_name;     // set on a tool call's first fragment
};

// Why the model stopped, the same for every provider: code that checks for
// tool calls keeps working when a fallback moves the call to another API
// (OpenAI says "tool_calls", Anthropic "tool_use", Gemini "STOP").
enum class FinishReason : std::uint8_t {
  kStop,           // a natural end or a stop sequence
  kLength,         // max_tokens or the context window cut the reply
  kToolCalls,      // the reply carries tool calls
  kContentFilter,  // a safety system cut or withheld the reply
  kOther,          // anything else, or none given
};
// "stop", "length", "tool_calls", "content_filter", "other".
std::string_view to_string(FinishReason reason) noexcept;

struct ChatResponse {
  std::string content;  // assistant text ("" when only tool calls came)
  std::string refusal;  // the model's refusal text, when it gave one
  std::vector<ToolCall> tool_calls;
  FinishReason finish = FinishReason::kOther;  // normalised
  std::string finish_reason;                   // the provider's value verbatim ("stop", "end_turn", ...)
  Usage usage;
  std::string id;                  // provider's response id
  std::string model;               // model name the provider reported
  std::string target;              // name of the target that answered
  std::optional<double> cost_usd;  // nullopt when no price is known
  std::vector<Attempt> attempts;   // every attempt, this success included
};

// A target's circuit breaker, as Client::health() reports it.
struct TargetHealth {
  std::string target;
  enum class State : std::uint8_t { kClosed, kOpen, kHalfOpen } state = State::kClosed;
  int consecutive_failures = 0;
  std::chrono::milliseconds reopens_in{0};  // for kOpen
  std::optional<ErrorCategory> opened_by;
};

}  // namespace llmguard

#endif  // LLMGUARD_TYPES_H_
