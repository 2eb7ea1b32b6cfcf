// A streamed reply as it is assembled: the caller's deltas, the text and tool
// calls so far, the usage, and whether the stream ended as it should. Each
// wire API (src/providers/) derives its decoder from StreamDecoder, owning
// both the framing (SSE, AWS event-stream) and the meaning of its events.
#ifndef LLMGUARD_SRC_STREAM_H_
#define LLMGUARD_SRC_STREAM_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmguard/error.h"
#include "llmguard/runtime.h"
#include "llmguard/types.h"
#include "sse.h"
#include "usage_check.h"

namespace llmguard::internal {

class StreamDecoder {
 public:
  using Emit = std::function<void(const StreamDelta&)>;

  StreamDecoder() = default;
  StreamDecoder(const StreamDecoder&) = delete;
  StreamDecoder& operator=(const StreamDecoder&) = delete;
  virtual ~StreamDecoder() = default;

  // Body bytes of a 2xx reply as they arrive, cut anywhere. Returns an Error
  // when the stream reports one or is malformed; the stream must then be
  // abandoned. `http_status` and `headers` go into a classified error.
  virtual std::optional<Error> feed(std::string_view bytes, const Emit& emit, int http_status,
                                    const Headers& headers) = 0;

  // The accumulated reply, when the stream is complete: its end marker came
  // ([DONE], message_stop, ...), or it carried a finish reason and then
  // closed between events (some servers and proxies never send the marker).
  // Else a kTransient error: the stream was truncated. `reported` (when
  // given) receives the usage as the stream carried it, for the caller's
  // checked_usage(); the reply's `usage` is already
  // checked_usage(reported, 0, estimate_tokens(reply_bytes(reply))), as
  // parse_response_body does.
  Result<ChatResponse> finish(int http_status, ReportedUsage* reported = nullptr);

  // True once any content delta (text or tool-call fragment) was emitted.
  bool delivered() const { return delivered_; }
  // True once any event carried a usage object (the counts may still be
  // unusable: see checked_usage).
  bool saw_usage() const { return saw_usage_; }
  const std::string& content() const { return reply_.content; }

 protected:
  void emit_text(std::string_view text, const Emit& emit);
  // Appends `fragment` to tool call `index`'s arguments and tells the caller;
  // the first fragment of a call carries its id and name.
  void emit_tool_fragment(std::size_t index, std::string_view fragment, const Emit& emit);
  // Tool call `index`, created (empty) with those before it if need be.
  ToolCall& tool_call(std::size_t index);
  // A fragment (maybe empty) of tool call `index` has reached the caller.
  bool tool_started(std::size_t index) const { return index < tool_started_.size() && tool_started_[index]; }
  void mark_complete() { complete_ = true; }
  void mark_usage_seen() { saw_usage_ = true; }

  // What a derived decoder adds when the stream ends: the usage in the
  // common shape, and any last touches to the reply.
  virtual ReportedUsage final_usage() = 0;
  // Bytes of an unfinished frame or event are pending.
  virtual bool has_partial_frame() const = 0;

  ChatResponse reply_;

 private:
  bool complete_ = false;
  bool delivered_ = false;
  bool saw_usage_ = false;
  std::vector<bool> tool_started_;
};

// A decoder whose framing is Server-Sent Events: feed() runs the SSE parser
// and hands each event to on_event().
class SseStreamDecoder : public StreamDecoder {
 public:
  std::optional<Error> feed(std::string_view bytes, const Emit& emit, int http_status, const Headers& headers) final;

 protected:
  virtual std::optional<Error> on_event(const SseEvent& event, const Emit& emit, int http_status,
                                        const Headers& headers) = 0;
  bool has_partial_frame() const final { return sse_.has_partial_event(); }

 private:
  SseParser sse_;
};

// "malformed stream: <what>", a kTransient error: such a stream is retried.
Error malformed_stream(std::string_view what);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_STREAM_H_
