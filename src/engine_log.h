// The client's log lines (ClientOptions::log_level): logfmt, one line per
// attempt, per call and (at kDebug) per engine event, for people reading a
// terminal or a log search. Values are quoted when they need it and control
// characters escaped, so a provider's message cannot break a line or drive
// a terminal; credentials are masked by the caller before a line is built.
#ifndef LLMGUARD_SRC_ENGINE_LOG_H_
#define LLMGUARD_SRC_ENGINE_LOG_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "llmguard/error.h"
#include "llmguard/options.h"
#include "llmguard/types.h"

namespace llmguard::internal {

// LLMGUARD_LOG's value: "info" -> kInfo, "debug" -> kDebug (any case),
// anything else (or null) -> kOff.
LogLevel log_level_from(const char* value) noexcept;

// Writes `line` and a newline to standard error in one write.
void write_log_line_to_stderr(std::string_view line);

// `llmguard call=7 key=value ...`
class LogLine {
 public:
  explicit LogLine(std::uint64_t call_id);
  LogLine& field(std::string_view key, std::string_view value);
  LogLine& field(std::string_view key, std::int64_t value);
  LogLine& field(std::string_view key, double value);
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// One attempt of call `call_id` as its trail holds it; `number` counts from 1.
std::string attempt_line(std::uint64_t call_id, std::size_t number, const Attempt& attempt, std::string_view model,
                         std::string_view caller_tag);
// The call's outcome. `took`: from the call's start.
std::string call_line(std::uint64_t call_id, const Result<ChatResponse>& result, std::chrono::milliseconds took,
                      std::string_view caller_tag);
std::string event_line(std::uint64_t call_id, const Event& event);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_ENGINE_LOG_H_
