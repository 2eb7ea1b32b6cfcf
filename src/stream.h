// Turns a provider's SSE events into caller deltas and, at the end, one
// ChatResponse; recognises error events mid-stream.
#ifndef LLMGUARD_SRC_STREAM_H_
#define LLMGUARD_SRC_STREAM_H_

#include <simdjson.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "llmguard/options.h"
#include "llmguard/types.h"
#include "sse.h"
#include "usage_check.h"

namespace llmguard::internal {

class StreamAccumulator {
 public:
  using Emit = std::function<void(const StreamDelta&)>;

  explicit StreamAccumulator(Provider provider) : provider_(provider) {}

  // Handles one event. Returns an Error when the event reports one (or is
  // malformed); the stream must then be abandoned.
  std::optional<Error> on_event(const SseEvent& event, const Emit& emit, int http_status, const Headers& headers);

  // True once the stream's end marker arrived ([DONE] / message_stop).
  bool complete() const { return complete_; }
  // True once any content delta (text or tool-call fragment) was emitted.
  bool delivered() const { return delivered_; }
  // True once any event carried a usage object (the counts may still be
  // unusable: see checked_usage).
  bool saw_usage() const { return saw_usage_; }
  const std::string& content() const { return response_.content; }

  // The accumulated reply, when the stream is complete: its end marker came
  // ([DONE] / message_stop), or it carried a finish reason and ended
  // `cleanly` (closed between events; some servers and proxies never send
  // the marker). Else a kTransient error: the stream was truncated.
  // `reported` (when given) receives the usage as the stream carried it (the
  // last usage object of an OpenAI stream; Anthropic's message_start counts
  // overridden by message_delta's, whose output_tokens alone is the final
  // completion count), for the caller's checked_usage(). The reply's `usage`
  // is already checked_usage(reported, 0, estimate_tokens(reply_bytes(reply))),
  // as parse_response_body does.
  Result<ChatResponse> finish(int http_status, ReportedUsage* reported = nullptr, bool cleanly = false);

 private:
  std::optional<Error> on_openai(std::string_view data, const Emit& emit, int http_status, const Headers& headers);
  std::optional<Error> on_tool_call_deltas(simdjson::dom::array calls, const Emit& emit);
  std::optional<Error> on_anthropic(std::string_view data, const Emit& emit, int http_status, const Headers& headers);
  void emit_text(std::string_view text, const Emit& emit);
  void emit_tool_fragment(std::size_t index, std::string_view fragment, bool first, const Emit& emit);

  Provider provider_;
  ChatResponse response_;
  bool complete_ = false;
  bool delivered_ = false;
  bool saw_usage_ = false;
  std::vector<bool> tool_started_;
  // Anthropic: content block index -> tool call index (-1 for text blocks).
  std::vector<int> block_tool_;
  ReportedUsage openai_usage_;
  AnthropicUsageParts anthropic_usage_;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_STREAM_H_
