#include "sse.h"

namespace llmguard::internal {

bool SseParser::feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event) {
  std::size_t pos = 0;
  if (last_was_cr_ && !bytes.empty() && bytes[0] == '\n') pos = 1;
  last_was_cr_ = false;
  while (pos < bytes.size()) {
    const std::size_t end = bytes.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(pos));
      return line_.size() + data_.size() <= max_event_bytes_;
    }
    std::string_view line = bytes.substr(pos, end - pos);
    if (!line_.empty()) {
      line_.append(line);
      line = line_;
    }
    if (!process_line(line, on_event)) return false;
    line_.clear();
    pos = end + 1;
    if (bytes[end] == '\r') {
      if (pos < bytes.size()) {
        if (bytes[pos] == '\n') ++pos;
      } else {
        last_was_cr_ = true;
      }
    }
  }
  return true;
}

bool SseParser::process_line(std::string_view line, const std::function<bool(const SseEvent&)>& on_event) {
  if (line.empty()) {
    bool keep_going = true;
    if (has_data_) {
      keep_going = on_event(SseEvent{event_, data_});
    }
    event_.clear();
    data_.clear();
    has_data_ = false;
    return keep_going;
  }
  if (line[0] == ':') return true;  // comment / keep-alive
  std::string_view field = line;
  std::string_view value;
  if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
    return data_.size() <= max_event_bytes_;
  }
  if (field == "event") event_.assign(value);
  return true;  // "id", "retry" and unknown fields are ignored
}

}  // namespace llmguard::internal
