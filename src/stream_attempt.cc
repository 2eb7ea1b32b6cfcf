#include "stream_attempt.h"

#include "classify.h"
#include "text.h"

namespace llmguard::internal {

void StreamAttempt::on_headers(int status, const Headers& headers) {
  status_ = status;
  headers_ = headers;
  // A web page where the event stream belongs (base_url pointing at a site
  // or a login portal) is read whole and classified, like an error.
  const std::string* type = find_header(headers, "content-type");
  is_page_ = type && istarts_with(trim(*type), "text/html");
}

bool StreamAttempt::on_bytes(std::string_view chunk, const StreamAccumulator::Emit& emit) {
  if (is_error_reply()) {
    // An error reply to a streaming request is plain JSON (or HTML): kept
    // whole for the classifier (the transport bounds it by max_response_bytes).
    error_body_.append(chunk);
    return true;
  }
  const bool ok = sse_.feed(chunk, [&](const SseEvent& event) {
    if (auto error = accumulator_.on_event(event, emit, status_, headers_)) {
      error_ = std::move(*error);
      return false;
    }
    return true;
  });
  if (!ok && !error_)
    error_ = make_error(ErrorCategory::kTransient, "malformed stream: an event exceeded the size limit");
  return ok;
}

void StreamAttempt::fail(Error error) {
  if (!error_) error_ = std::move(error);
}

Result<ChatResponse> StreamAttempt::outcome(Result<HttpResponse> result, std::chrono::system_clock::time_point now,
                                            ReportedUsage* reported, const UserRules* user_rules) {
  if (error_) {
    Error e = std::move(*error_);
    error_.reset();
    if (e.http_status == 0) e.http_status = status_;
    return e;
  }
  if (!result.ok()) return std::move(result).error();
  const int status = result->status;
  if (status < 200 || status >= 300 || is_page_)
    return classify_response(status, result->headers, error_body_, now, nullptr, user_rules);
  // A stream that ended mid-event or without its end marker was truncated.
  return accumulator_.finish(status, reported, /*cleanly=*/!sse_.has_partial_event());
}

}  // namespace llmguard::internal
