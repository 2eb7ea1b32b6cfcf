// Incremental Server-Sent Events parser (WHATWG HTML "event stream"
// interpretation): lines end in CRLF, LF or CR, comments start with ':',
// "data" lines of one event are joined with '\n', a blank line dispatches.
#ifndef LLMGUARD_SRC_SSE_H_
#define LLMGUARD_SRC_SSE_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace llmguard::internal {

struct SseEvent {
  std::string_view event;  // "" when the stream named none ("message")
  std::string_view data;
};

class SseParser {
 public:
  // `max_event_bytes` bounds one event's buffered text; past it `feed`
  // returns false and the stream should be abandoned.
  explicit SseParser(std::size_t max_event_bytes = 8u << 20) : max_event_bytes_(max_event_bytes) {}

  // Feeds bytes; calls `on_event` for each complete event. Returns false if
  // an event outgrew the limit or `on_event` returned false.
  bool feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event);
  // Bytes of an unfinished line or event are pending.
  bool has_partial_event() const { return !line_.empty() || !data_.empty() || has_data_; }

 private:
  bool process_line(std::string_view line, const std::function<bool(const SseEvent&)>& on_event);

  std::size_t max_event_bytes_;
  std::string line_;  // an incomplete line carried between feeds
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  bool last_was_cr_ = false;  // a CR ended the last feed: skip a leading LF
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_SSE_H_
