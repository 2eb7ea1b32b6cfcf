// llmguard-mock: an OpenAI- and Anthropic-compatible HTTP server on loopback
// that replays real providers' error bodies and network faults on script.
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
struct MockReply {
  int status = 200;
  Headers headers;                  // added to the response
  std::optional<std::string> body;  // nullopt: a completion in the endpoint's format
  std::string content;              // text of a generated completion ("" = derived)
  std::chrono::milliseconds delay{0};  // before the status line
  std::chrono::milliseconds drip{0};   // between body pieces
  std::size_t chunk_bytes = 0;         // piece size when dripping (0 = 16 bytes)
  std::optional<std::size_t> reset_after_bytes;  // send this much body, then RST
  bool hang = false;                   // read the request, never answer
  // Streaming: stop after this many SSE events and close without the end.
  std::optional<int> truncate_after_events;
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
  // When set, requests without this key get OpenAI's/Anthropic's 401 body.
  std::string require_key;
};

struct MockStats {
  std::uint64_t requests = 0;
  std::uint64_t connections = 0;  // accepted TCP connections
  std::map<std::string, std::uint64_t> by_model;
  std::uint64_t prompt_tokens = 0;      // usage reported in successful replies
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
// milliseconds ("delay_ms", "drip_ms").
Result<std::vector<std::pair<std::string, MockReply>>> parse_script(std::string_view json);

}  // namespace llmguard::mock

#endif  // LLMGUARD_TOOLS_MOCK_MOCK_SERVER_H_
