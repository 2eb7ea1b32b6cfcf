// One streamed attempt's reply as it arrives: the status and headers, the SSE
// frames and events turned into the caller's deltas, an error reply kept whole for the
// classifier, and the first error that ends it. The call (call.cc) decides
// what to do with the outcome; this only reads.
#ifndef LLMGUARD_SRC_STREAM_ATTEMPT_H_
#define LLMGUARD_SRC_STREAM_ATTEMPT_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "llmguard/error.h"
#include "llmguard/options.h"
#include "llmguard/runtime.h"
#include "llmguard/types.h"
#include "stream.h"
#include "usage_check.h"

namespace llmguard::internal {

class UserRules;

class StreamAttempt {
 public:
  explicit StreamAttempt(Provider provider);

  void on_headers(int status, const Headers& headers);
  // Body bytes as they arrive; false when the attempt must be abandoned (an
  // error event, or a malformed stream): outcome() then says why.
  bool on_bytes(std::string_view chunk, const StreamDecoder::Emit& emit);
  // Ends the attempt with `error` (the first-token timeout, say), unless it
  // has already ended with another.
  void fail(Error error);

  // The reply, or why there is none: the stream's own error first, then the
  // transport's, then an error reply classified, then a truncated stream.
  // `reported` receives the usage as the stream carried it; an error reply
  // is classified with `user_rules` first.
  Result<ChatResponse> outcome(Result<HttpResponse> result, std::chrono::system_clock::time_point now,
                               ReportedUsage* reported, const UserRules* user_rules = nullptr);

  int status() const { return status_; }
  bool delivered() const { return decoder_->delivered(); }
  bool saw_usage() const { return decoder_->saw_usage(); }
  const std::string& content() const { return decoder_->content(); }

 private:
  bool is_error_reply() const { return status_ < 200 || status_ >= 300 || is_page_; }

  int status_ = 0;
  Headers headers_;
  bool is_page_ = false;                    // a 2xx text/html reply: no stream at all
  std::string error_body_;                  // a non-2xx reply's body, read whole
  std::unique_ptr<StreamDecoder> decoder_;  // the wire API's framing and events
  std::optional<Error> error_;              // an error event, a malformed stream, or fail()
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_STREAM_ATTEMPT_H_
