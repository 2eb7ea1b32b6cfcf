#include "sse.h"

namespace llmguard::internal {

bool SseParser::add_data(std::string_view value, bool borrowed) {
  if (!has_data_ && borrowed) {
    borrowed_data_ = value;
    data_is_borrowed_ = true;
    has_data_ = true;
    return value.size() <= max_event_bytes_;
  }
  keep_borrowed_data();
  if (has_data_) data_ += '\n';
  data_.append(value);
  has_data_ = true;
  return data_.size() <= max_event_bytes_;
}

void SseParser::keep_borrowed_data() {
  if (!data_is_borrowed_) return;
  data_.assign(borrowed_data_);
  data_is_borrowed_ = false;
}

}  // namespace llmguard::internal
