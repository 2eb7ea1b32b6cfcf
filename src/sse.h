// Incremental Server-Sent Events parser (WHATWG HTML "event stream"
// interpretation): lines end in CRLF, LF or CR, comments start with ':',
// "data" lines of one event are joined with '\n', a blank line dispatches.
//
// Every byte of a stream passes through here, so it is one pass: memchr finds
// each LF, and CR (which no known provider sends) is searched for once per
// feed until one is met. An event whose one data line lies within a single
// feed is handed out as a view of the fed bytes, without a copy.
#ifndef LLMGUARD_SRC_SSE_H_
#define LLMGUARD_SRC_SSE_H_

#include <cstddef>
#include <cstring>
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

  // Feeds bytes; calls `on_event(const SseEvent&) -> bool` for each complete
  // event. Returns false if an event outgrew the limit or `on_event` returned
  // false. The event's views are valid during the call only.
  template <typename OnEvent>
  bool feed(std::string_view bytes, OnEvent&& on_event);
  // Bytes of an unfinished line or event are pending.
  bool has_partial_event() const { return !line_.empty() || has_data_; }

 private:
  static const char* find(const char* from, const char* end, char c) {
    const void* at = from < end ? std::memchr(from, c, static_cast<std::size_t>(end - from)) : nullptr;
    return at ? static_cast<const char*>(at) : end;
  }
  // `borrowed`: `line` lies in the bytes of the current feed.
  template <typename OnEvent>
  bool process_line(std::string_view line, bool borrowed, OnEvent& on_event);
  bool add_data(std::string_view value, bool borrowed);
  // Before the fed bytes go away, a borrowed event's data is copied.
  void keep_borrowed_data();

  std::size_t max_event_bytes_;
  std::string line_;  // an incomplete line carried between feeds
  std::string event_;
  std::string data_;
  std::string_view borrowed_data_;  // the event's data while it is a view of the fed bytes
  bool data_is_borrowed_ = false;
  bool has_data_ = false;
  bool last_was_cr_ = false;  // a CR ended the last feed: skip a leading LF
};

template <typename OnEvent>
bool SseParser::feed(std::string_view bytes, OnEvent&& on_event) {
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  if (last_was_cr_ && p < end && *p == '\n') ++p;
  last_was_cr_ = false;
  const char* next_cr = find(p, end, '\r');
  while (p < end) {
    const char* eol = find(p, next_cr, '\n');
    if (eol == end) break;
    std::string_view line(p, static_cast<std::size_t>(eol - p));
    const bool borrowed = line_.empty();
    if (!borrowed) {
      line_.append(line);
      line = line_;
    }
    p = eol + 1;
    if (*eol == '\r') {
      if (p < end) {
        if (*p == '\n') ++p;
      } else {
        last_was_cr_ = true;
      }
      next_cr = find(p, end, '\r');
    }
    if (!process_line(line, borrowed, on_event)) {
      keep_borrowed_data();
      return false;
    }
    line_.clear();
  }
  keep_borrowed_data();
  line_.append(p, static_cast<std::size_t>(end - p));
  return line_.size() + data_.size() <= max_event_bytes_;
}

template <typename OnEvent>
bool SseParser::process_line(std::string_view line, bool borrowed, OnEvent& on_event) {
  if (line.empty()) {
    bool keep_going = true;
    if (has_data_) keep_going = on_event(SseEvent{event_, data_is_borrowed_ ? borrowed_data_ : data_});
    event_.clear();
    data_.clear();
    data_is_borrowed_ = false;
    has_data_ = false;
    return keep_going;
  }
  if (line[0] == ':') return true;  // comment / keep-alive
  std::string_view field = line;
  std::string_view value = line.substr(line.size());  // "data" alone: empty, but pointing into the line
  if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") return add_data(value, borrowed);
  if (field == "event") event_.assign(value);
  return true;  // "id", "retry" and unknown fields are ignored
}

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_SSE_H_
