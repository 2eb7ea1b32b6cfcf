#include "engine_log.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "text.h"

namespace llmguard::internal {
namespace {

bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '=' || c == '"' || c == '\\' || u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

void append_quoted(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace

LogLevel log_level_from(const char* value) noexcept {
  if (value == nullptr) return LogLevel::kOff;
  const std::string_view v = trim(value);
  if (iequals(v, "debug")) return LogLevel::kDebug;
  if (iequals(v, "info")) return LogLevel::kInfo;
  return LogLevel::kOff;
}

void write_log_line_to_stderr(std::string_view line) {
  std::string buffer;
  buffer.reserve(line.size() + 1);
  buffer.append(line).push_back('\n');
  // One write, so that lines of concurrent clients do not interleave.
  std::string_view rest = buffer;
  while (!rest.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log to: the call goes on
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

LogLine::LogLine(std::uint64_t call_id) { text_ = fmt::format("llmguard call={}", call_id); }

LogLine& LogLine::field(std::string_view key, std::string_view value) {
  text_.push_back(' ');
  text_.append(key).push_back('=');
  if (needs_quotes(value)) {
    append_quoted(text_, value);
  } else {
    text_.append(value);
  }
  return *this;
}

LogLine& LogLine::field(std::string_view key, std::int64_t value) { return field(key, fmt::format("{}", value)); }

LogLine& LogLine::field(std::string_view key, double value) { return field(key, fmt::format("{:.6g}", value)); }

std::string attempt_line(std::uint64_t call_id, std::size_t number, const Attempt& a, std::string_view model,
                         std::string_view caller_tag) {
  LogLine line(call_id);
  line.field("attempt", static_cast<std::int64_t>(number)).field("target", a.target);
  if (!model.empty()) line.field("model", model);
  if (a.skipped) {
    line.field("skipped", to_string(*a.skipped));
  } else {
    if (a.http_status != 0) line.field("status", static_cast<std::int64_t>(a.http_status));
    line.field("category", a.category ? to_string(*a.category) : std::string_view("ok"));
    line.field("waited_ms", static_cast<std::int64_t>(a.waited.count()));
    line.field("took_ms", static_cast<std::int64_t>(a.duration.count()));
    if (a.next) line.field("next", to_string(*a.next));
    if (a.reason) line.field("reason", to_string(*a.reason));
  }
  if (!caller_tag.empty()) line.field("tag", caller_tag);
  return line.text();
}

std::string call_line(std::uint64_t call_id, const Result<ChatResponse>& result, std::chrono::milliseconds took,
                      std::string_view caller_tag) {
  LogLine line(call_id);
  if (result.ok()) {
    const ChatResponse& r = *result;
    line.field("outcome", "ok").field("target", r.target);
    if (!r.model.empty()) line.field("model", r.model);
    line.field("attempts", static_cast<std::int64_t>(r.attempts.size()));
    line.field("took_ms", static_cast<std::int64_t>(took.count()));
    line.field("finish", to_string(r.finish));
    line.field("prompt_tokens", r.usage.prompt_tokens).field("completion_tokens", r.usage.completion_tokens);
    if (r.usage.estimated) line.field("usage", "estimated");
    if (r.cost_usd) line.field("cost_usd", *r.cost_usd);
  } else {
    const Error& e = result.error();
    line.field("outcome", "failed").field("category", to_string(e.category));
    if (!e.target.empty()) line.field("target", e.target);
    if (e.http_status != 0) line.field("status", static_cast<std::int64_t>(e.http_status));
    line.field("attempts", static_cast<std::int64_t>(e.attempts.size()));
    line.field("took_ms", static_cast<std::int64_t>(took.count()));
    if (!e.message.empty()) line.field("message", e.message);
  }
  if (!caller_tag.empty()) line.field("tag", caller_tag);
  return line.text();
}

std::string event_line(std::uint64_t call_id, const Event& event) {
  LogLine line(call_id);
  line.field("event", to_string(event.kind));
  if (event.attempt != 0) line.field("attempt", static_cast<std::int64_t>(event.attempt));
  if (!event.target.empty()) line.field("target", event.target);
  if (event.category) line.field("category", to_string(*event.category));
  if (event.http_status != 0) line.field("status", static_cast<std::int64_t>(event.http_status));
  if (event.delay.count() != 0) line.field("delay_ms", static_cast<std::int64_t>(event.delay.count()));
  if (event.reason) line.field("reason", to_string(*event.reason));
  if (!event.message.empty()) line.field("message", event.message);
  if (!event.caller_tag.empty()) line.field("tag", event.caller_tag);
  return line.text();
}

}  // namespace llmguard::internal
