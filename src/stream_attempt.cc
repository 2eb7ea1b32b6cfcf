#include "stream_attempt.h"

#include "classify.h"
#include "providers/wire_api.h"
#include "text.h"

namespace llmguard::internal {

StreamAttempt::StreamAttempt(Provider provider) : decoder_(wire_api(provider).stream_decoder()) {}

void StreamAttempt::on_headers(int status, const Headers& headers) {
  status_ = status;
  headers_ = headers;
  // A web page where the event stream belongs (base_url pointing at a site
  // or a login portal) is read whole and classified, like an error.
  const std::string* type = find_header(headers, "content-type");
  is_page_ = type && istarts_with(trim(*type), "text/html");
}

bool StreamAttempt::on_bytes(std::string_view chunk, const StreamDecoder::Emit& emit) {
  if (is_error_reply()) {
    // An error reply to a streaming request is plain JSON (or HTML): kept
    // whole for the classifier (the transport bounds it by max_response_bytes).
    error_body_.append(chunk);
    return true;
  }
  if (auto error = decoder_->feed(chunk, emit, status_, headers_)) {
    error_ = std::move(*error);
    return false;
  }
  return true;
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
  return decoder_->finish(status, reported);
}

}  // namespace llmguard::internal
