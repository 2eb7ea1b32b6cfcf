// The seams through which llmguard touches the outside world: time, chance
// and I/O. Production code uses the real ones (`Client::create` builds them);
// tests inject fakes so that retries, jitter and deadlines are deterministic.
#ifndef LLMGUARD_RUNTIME_H_
#define LLMGUARD_RUNTIME_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmguard/error.h"

namespace llmguard {

// Monotonic time for deadlines and backoff; wall time only to read HTTP
// dates and RFC 3339 reset stamps. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
  virtual std::chrono::system_clock::time_point wall_now() const = 0;
};
// The process's real clocks. Never destroyed.
Clock& real_clock();

// Uniform 64-bit random numbers for jitter. Implementations must be
// thread-safe.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual std::uint64_t next_u64() = 0;
  // Uniform in [0, 1).
  double next_unit() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
};
// A thread-safe generator seeded from the OS. Never destroyed.
RandomSource& system_random();

// Header names are stored lower-cased; values verbatim.
using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;
// The value of the first header named `name` (case-insensitive), or nullptr.
const std::string* find_header(const Headers& headers, std::string_view name);

struct HttpRequest {
  std::string url;
  Headers headers;
  std::string body;  // POSTed as-is
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds total_timeout{600'000};  // whole exchange
  // The transfer fails as a timeout when no byte arrives for this long.
  std::chrono::milliseconds idle_timeout{120'000};
  std::size_t max_response_bytes = 32u << 20;
  bool verify_tls = true;
  std::string ca_file;  // PEM bundle to trust; empty: the system's
};

struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;  // empty when the body went to `on_body_chunk`
};

// Callbacks of one request. They run on the transport's event-loop thread,
// one at a time; they must not block.
struct HttpHandlers {
  // Called once, when the status line and headers are in. Optional.
  std::function<void(int status, const Headers& headers)> on_headers;
  // Streaming: when set, body bytes go here as they arrive instead of into
  // `HttpResponse::body`. Return false to abort the transfer (it then
  // completes with a kCancelled error).
  std::function<bool(std::string_view chunk)> on_body_chunk;
  // Called exactly once with the response or a transport error (categories
  // kTimeout, kConnection, kCancelled, or kTransient for an oversized reply).
  std::function<void(Result<HttpResponse>)> on_complete;
};

// An event loop that runs HTTP requests and timers. All callbacks run on the
// loop's thread, so state touched only from callbacks needs no lock.
// Thread-safe: any thread may call any member.
class Transport {
 public:
  using RequestId = std::uint64_t;
  using TimerId = std::uint64_t;

  virtual ~Transport() = default;

  virtual RequestId send(HttpRequest request, HttpHandlers handlers) = 0;
  // Aborts a request; its `on_complete` then runs with kCancelled, unless it
  // had already completed. Returns immediately.
  virtual void cancel(RequestId id) = 0;

  // Runs `fn` on the loop thread after `delay` (of the transport's clock).
  virtual TimerId schedule(std::chrono::nanoseconds delay, std::function<void()> fn) = 0;
  // Returns true if the timer had not fired and now never will.
  virtual bool cancel_timer(TimerId id) = 0;
  // Runs `fn` on the loop thread as soon as possible.
  void post(std::function<void()> fn) { schedule(std::chrono::nanoseconds(0), std::move(fn)); }

  // True when called from the loop thread (blocking there would deadlock).
  virtual bool in_loop_thread() const = 0;
};

struct CurlTransportOptions {
  // Idle keep-alive connections kept for reuse across calls. 0: as many as
  // the most calls ever in flight at once (at least 16), so a burst of
  // concurrent calls never closes connections the next burst needs again (a
  // new TLS handshake per call costs far more than idle sockets, which
  // libcurl closes after two idle minutes anyway) — but at most 1024 and at
  // most a quarter of the process's file-descriptor limit.
  long max_cached_connections = 0;
  // 0 = no limit. Calls beyond it queue inside libcurl.
  long max_connections_per_host = 0;
  std::string user_agent = "llmguard/0.1";
};

// The production transport: one libcurl multi handle driven by one thread,
// reusing keep-alive connections (HTTP/2 where the server offers it over TLS).
// Destroying it cancels outstanding requests (their `on_complete` runs with
// kCancelled) and joins the thread; destroyed from one of its own callbacks,
// it lets the thread finish and exit on its own instead. Share one transport
// between clients freely: each keeps it alive while it needs it.
Result<std::shared_ptr<Transport>> make_curl_transport(CurlTransportOptions options = {});

}  // namespace llmguard

#endif  // LLMGUARD_RUNTIME_H_
