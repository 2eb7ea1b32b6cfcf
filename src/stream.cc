#include "stream.h"

#include <fmt/format.h>

#include "providers/wire.h"

namespace llmguard::internal {

Error malformed_stream(std::string_view what) {
  return make_error(ErrorCategory::kTransient, fmt::format("malformed stream: {}", what));
}

void StreamDecoder::emit_text(std::string_view text, const Emit& emit) {
  if (text.empty()) return;
  reply_.content.append(text);
  delivered_ = true;
  if (emit) emit(StreamDelta{.kind = StreamDelta::Kind::kText, .text = text});
}

ToolCall& StreamDecoder::tool_call(std::size_t index) {
  if (reply_.tool_calls.size() <= index) reply_.tool_calls.resize(index + 1);
  return reply_.tool_calls[index];
}

void StreamDecoder::emit_tool_fragment(std::size_t index, std::string_view fragment, const Emit& emit) {
  ToolCall& call = tool_call(index);
  if (tool_started_.size() <= index) tool_started_.resize(index + 1, false);
  const bool first = !tool_started_[index];
  tool_started_[index] = true;
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

Result<ChatResponse> StreamDecoder::finish(int http_status, ReportedUsage* reported) {
  if (reported) *reported = {};
  const bool cleanly = !has_partial_frame();
  if (!complete_ && !(cleanly && !reply_.finish_reason.empty())) {
    Error e = malformed_stream(reply_.finish_reason.empty()
                                   ? "the stream ended before any finish reason or end marker (truncated)"
                                   : "the stream ended in the middle of an event");
    e.http_status = http_status;
    e.partial_content = reply_.content;
    return e;
  }
  const ReportedUsage usage = final_usage();
  reply_.finish = normalised_finish(reply_.finish_reason, !reply_.tool_calls.empty());
  reply_.usage = checked_usage(usage, 0, estimate_tokens(reply_bytes(reply_)));
  if (reported) *reported = usage;
  return std::move(reply_);
}

std::optional<Error> SseStreamDecoder::feed(std::string_view bytes, const Emit& emit, int http_status,
                                            const Headers& headers) {
  std::optional<Error> error;
  const bool ok = sse_.feed(bytes, [&](const SseEvent& event) {
    error = on_event(event, emit, http_status, headers);
    return !error.has_value();
  });
  if (!ok && !error) error = malformed_stream("an event exceeded the size limit");
  return error;
}

}  // namespace llmguard::internal
