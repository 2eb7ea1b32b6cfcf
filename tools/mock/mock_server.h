// llmguard-mock: an HTTP server on loopback speaking the OpenAI (and Azure),
// Anthropic, Gemini (and Vertex AI) and Bedrock Converse APIs, that replays real providers'
// error bodies and network faults on script.
// Tests start it in-process; the llmguard-mock binary wraps it for shells.
#ifndef LLMGUARD_TOOLS_MOCK_MOCK_SERVER_H_
#define LLMGUARD_TOOLS_MOCK_MOCK_SERVER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmguard/error.h"
#include "llmguard/runtime.h"

namespace llmguard::mock {

// One scripted reply. Default-constructed: a normal successful completion.
// A tool call a generated reply makes; ids are made up per API.
struct MockToolCall {
  std::string name;
  std::string arguments_json = "{}";  // a JSON object
};

struct MockReply {
  int status = 200;
  Headers headers;                  // added to the response
  std::optional<std::string> body;  // nullopt: a completion in the endpoint's format
  std::string content;              // text of a generated completion ("" = derived)
  // Tool calls of the generated completion, in the API's own form, whole and
  // streamed (arguments in two fragments where the API streams them); the
  // finish reason says tool calls. With tool calls, an empty `content` means
  // no text at all.
  std::vector<MockToolCall> tool_calls;
  std::chrono::milliseconds delay{0};            // before the status line
  std::chrono::milliseconds drip{0};             // between body pieces
  std::size_t chunk_bytes = 0;                   // piece size when dripping (0 = 16 bytes)
  std::optional<std::size_t> reset_after_bytes;  // send this much body, then RST
  bool hang = false;                             // read the request, never answer
  // Streaming: stop after this many SSE events and close without the end.
  std::optional<int> truncate_after_events;
  // Streaming: stop after this many SSE events and keep the connection open,
  // sending nothing more (a stall mid-stream).
  std::optional<int> stall_after_events;
  // A model that takes no assistant prefill: a request whose last message is
  // the assistant's gets the API's 400 for it; any other request this reply.
  bool reject_prefill = false;

  // Hostile faults. Script fields have the same names.
  //
  // A stream that never ends: after the opening events, the same content
  // delta (`content`, else "more ") is sent forever, `drip` apart (0: as
  // fast as the client reads), until the client hangs up. The reply is a
  // stream in the endpoint's format even for a non-streaming request. Only
  // one delta is buffered at a time, so the mock's memory stays flat.
  bool endless = false;
  // JSON text written verbatim as the reply's usage object, in whole replies
  // and streams alike (OpenAI: the final usage chunk, sent even when the
  // request did not ask for it; Anthropic: message_start's message.usage and
  // message_delta's usage). Not checked: `{"prompt_tokens": 1e999}`,
  // `{"input_tokens": -5}` and `null` all go out as written. In a script, a
  // string is taken verbatim; any other JSON value is written minified.
  std::optional<std::string> usage;
  // Leaves usage out entirely (whole replies and every stream event).
  bool omit_usage = false;
  // The completion token count to report (e.g. far above max_tokens), in
  // place of the one derived from the content. Counted in MockStats too.
  std::optional<std::int64_t> completion_tokens;
  // Bytes written verbatim instead of a whole HTTP response (status line and
  // headers included: "HTTP/1.1 abc\r\n\r\n", or an HTTP/0.9-style body with
  // no status line), after `delay`; then the connection is closed.
  std::optional<std::string> raw;
  // An error carrying the request's credential (Authorization: Bearer,
  // x-api-key or api-key; "" when none), to test redaction. It replaces the
  // generated reply and `body`. Status `status` (200: a 200 whose body is an
  // error object). In the error object, `code` and `type` are the key, and
  // `message` holds it as sent, upper-cased, and once more at its very end,
  // padded so that the message is longer than 1024 bytes and that last copy
  // straddles byte 1024. A streaming request with status 200 gets the opening
  // events and one content delta, then the same error object as a mid-stream
  // error event (OpenAI: `data: {"error": ...}`; Anthropic: `event: error`).
  bool echo_key = false;

  // Bedrock streams. An event-stream exception message of this type
  // ("throttlingException", "modelStreamErrorException",
  // "internalServerException", "serviceUnavailableException",
  // "validationException", "modelTimeoutException") with Bedrock's message
  // for it, sent after `stream_exception_deltas` content deltas in place of
  // the rest of the stream.
  std::optional<std::string> stream_exception;
  int stream_exception_deltas = 1;
  // The stream event (0 = messageStart, 1 = the first content delta, ...)
  // whose message CRC is sent wrong.
  std::optional<int> corrupt_crc_event;
};

// Named faults of the random mix, each replaying a real provider's response.
struct FaultMix {
  double rate_limit = 0;    // 429 rate_limit_exceeded with retry-after-ms
  double quota = 0;         // 429 insufficient_quota
  double overloaded = 0;    // 503 (OpenAI) / 529 (Anthropic)
  double server_error = 0;  // 500
  double bad_gateway = 0;   // 502 nginx HTML page
  double hang = 0;          // no answer at all
  double reset = 0;         // connection reset mid-body
  std::chrono::milliseconds retry_after{100};
};
// Parses "rate_limit=0.2,overloaded=0.1,hang=0.02".
Result<FaultMix> parse_fault_mix(std::string_view spec);

struct MockOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
  std::uint64_t seed = 1;
  FaultMix faults;
  // When set, requests without this key get the API's own answer to a wrong
  // key (OpenAI's and Anthropic's 401, Gemini's 400 API_KEY_INVALID).
  std::string require_key;
  // Bedrock: when set, a request signed with AWS SigV4 is checked against
  // these credentials (the signature recomputed over the received method,
  // host, path, body and x-amz-date); a mismatch gets Bedrock's 403
  // InvalidSignatureException. A bearer token is checked against require_key.
  struct AwsKeys {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;
    std::string region = "us-east-1";
  };
  std::optional<AwsKeys> aws;
};

struct MockStats {
  std::uint64_t requests = 0;
  std::uint64_t connections = 0;  // accepted TCP connections
  // Requests received and not yet answered in full: now, and the most at once.
  std::uint64_t in_flight = 0;
  std::uint64_t max_in_flight = 0;
  std::map<std::string, std::uint64_t> by_model;
  std::uint64_t prompt_tokens = 0;  // usage reported in successful replies
  std::uint64_t completion_tokens = 0;
};

// A request as the mock received it, for assertions.
struct RecordedRequest {
  std::string method, path;
  Headers headers;
  std::string body;
};

class MockServer {
 public:
  static Result<std::unique_ptr<MockServer>> start(MockOptions options);
  ~MockServer();

  int port() const;
  // "http://127.0.0.1:PORT/v1"
  std::string base_url() const;
  // Root without the version path, for Azure targets.
  std::string root_url() const;

  // Queues `reply` for the next request naming `model` ("*" = any model).
  // A model's own queue is used before the "*" queue. Thread-safe.
  void enqueue(const std::string& model, MockReply reply);
  MockStats stats() const;
  // Holds the answers to the next `count` requests until all of them have
  // arrived, then lets them go together: a burst of exactly that many
  // requests is in flight at once, whatever the timing. Thread-safe.
  void hold_until_concurrent(std::size_t count);
  std::vector<RecordedRequest> recent_requests() const;  // the last 256
  // Clears queues, counters and recordings.
  void reset();

  struct Impl;

 private:
  explicit MockServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses a script (JSON array of reply objects, each with an optional
// "model") into (model, reply) pairs. Field names match MockReply; delays in
// milliseconds ("delay_ms", "drip_ms"); "times" repeats an entry.
Result<std::vector<std::pair<std::string, MockReply>>> parse_script(std::string_view json);

}  // namespace llmguard::mock

#endif  // LLMGUARD_TOOLS_MOCK_MOCK_SERVER_H_
