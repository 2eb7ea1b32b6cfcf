// The libcurl event loop. One thread owns the CURLM handle and every CURL
// easy handle; other threads only push commands onto a queue and wake the
// loop with curl_multi_wakeup, so libcurl is never touched concurrently.
//
// Lifetime: the public CurlTransport is a handle on a CurlLoop that the loop
// thread co-owns. Destroying the handle stops the loop; the loop cancels every
// live transfer (running on_complete with kCancelled), drops pending timers,
// then frees the easy handles in the pool and the multi handle. The handle
// joins the thread, except when it is destroyed on that thread (the last
// reference dropped inside a callback): a thread cannot join itself, so it is
// detached and the loop frees itself when run() returns (Envoy's deferred
// delete, for the event loop itself).
#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "llmguard/runtime.h"
#include "text.h"

namespace llmguard {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

struct MultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct EasyDeleter {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};
using MultiHandle = std::unique_ptr<CURLM, MultiDeleter>;
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

const char* default_or_null(const std::string& value) { return value.empty() ? nullptr : value.c_str(); }

void ensure_curl_global_init() {
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)code;
}

// A request's header lines as libcurl takes them, shared by every transfer
// that sends the same headers (a target's requests all do).
struct SharedHeaderList {
  Headers source;
  HeaderList list;
};

struct Transfer {
  Transport::RequestId id = 0;
  HttpRequest request;
  HttpHandlers handlers;
  EasyHandle easy;
  std::string easy_ca_file;  // the CA bundle `easy` is configured with ("" = the system's)
  std::shared_ptr<const SharedHeaderList> header_list;
  HttpResponse response;
  bool headers_delivered = false;
  std::size_t body_bytes = 0;  // received so far, streamed or kept
  bool too_large = false;
  bool aborted_by_handler = false;
  bool idle_expired = false;
  SteadyTime last_activity;
  // The loop's time, read once a turn: every byte callback of a turn falls
  // within it, and a clock read per callback costs more than the callback.
  const SteadyTime* turn_start = nullptr;
  Transport::TimerId idle_timer = 0;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

class CurlLoop {
 public:
  using RequestId = Transport::RequestId;
  using TimerId = Transport::TimerId;

  explicit CurlLoop(CurlTransportOptions options) : options_(std::move(options)) {}
  ~CurlLoop();

  Status init();
  // Runs on the loop thread until stop().
  void run();
  void stop();
  RequestId send(HttpRequest request, HttpHandlers handlers);
  void cancel(RequestId id);
  TimerId schedule(std::chrono::nanoseconds delay, std::function<void()> fn);
  bool cancel_timer(TimerId id);
  bool in_loop_thread() const { return std::this_thread::get_id() == loop_thread_id_.load(); }

 private:
  struct SendCommand {
    std::unique_ptr<Transfer> transfer;
  };
  struct CancelCommand {
    RequestId id;
  };
  using Command = std::variant<SendCommand, CancelCommand>;

  void wake() { curl_multi_wakeup(multi_.get()); }
  void enqueue(Command command);
  void begin_transfer(std::unique_ptr<Transfer> transfer);
  void configure_once(CURL* easy);
  void configure(Transfer& t);
  std::shared_ptr<const SharedHeaderList> header_list_for(const Headers& headers);
  void finish(CURL* easy, CURLcode code);
  void complete(std::unique_ptr<Transfer> t, Result<HttpResponse> result);
  void cancel_on_loop(RequestId id, Error error);
  void arm_idle_timer(Transfer& t, SteadyTime due);
  void on_idle_timer(RequestId id);
  std::chrono::milliseconds fire_due_timers();
  static void deliver_headers(Transfer& t);

  static size_t on_header(char* data, size_t size, size_t count, void* user);
  static size_t on_write(char* data, size_t size, size_t count, void* user);

  CurlTransportOptions options_;
  MultiHandle multi_;
  // libcurl's built-in CA locations, restored on a pooled handle whose last
  // request trusted a ca_file of its own.
  std::string default_ca_info_, default_ca_path_;
  std::atomic<std::thread::id> loop_thread_id_{};
  std::atomic<bool> stopping_{false};
  std::atomic<RequestId> next_id_{1};

  std::mutex mu_;  // guards commands_ and timers_
  std::vector<Command> commands_;
  struct TimerKey {
    SteadyTime due;
    TimerId id;
    bool operator<(const TimerKey& o) const { return due != o.due ? due < o.due : id < o.id; }
  };
  std::map<TimerKey, std::function<void()>> timers_;
  std::unordered_map<TimerId, SteadyTime> timer_due_;

  // Loop thread only.
  std::unordered_map<RequestId, std::unique_ptr<Transfer>> active_;
  struct PooledEasy {
    EasyHandle easy;
    std::string ca_file;  // the CA bundle it was last configured with
  };
  std::vector<PooledEasy> easy_pool_;
  std::vector<std::shared_ptr<const SharedHeaderList>> header_lists_;  // newest last
  SteadyTime turn_start_ = std::chrono::steady_clock::now();
  long connection_cache_size_ = 0;   // CURLMOPT_MAXCONNECTS as last set
  long max_auto_cache_size_ = 1024;  // what a burst may grow it to: bounded, and by the descriptor limit
};

CurlLoop::~CurlLoop() {
  easy_pool_.clear();
  multi_.reset();
}

void CurlLoop::stop() {
  stopping_ = true;
  wake();
}

Status CurlLoop::init() {
  ensure_curl_global_init();
  multi_.reset(curl_multi_init());
  if (!multi_) return make_error(ErrorCategory::kConnection, "curl_multi_init failed");
  if (EasyHandle probe{curl_easy_init()}) {
    char* info = nullptr;
    if (curl_easy_getinfo(probe.get(), CURLINFO_CAINFO, &info) == CURLE_OK && info) default_ca_info_ = info;
    char* path = nullptr;
    if (curl_easy_getinfo(probe.get(), CURLINFO_CAPATH, &path) == CURLE_OK && path) default_ca_path_ = path;
  }
  connection_cache_size_ = options_.max_cached_connections > 0 ? options_.max_cached_connections : 16;
  // Idle sockets kept after a burst must leave most descriptors to the
  // application (and to the next burst's new connections).
  if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    max_auto_cache_size_ = std::clamp<long>(static_cast<long>(limit.rlim_cur / 4), 16, max_auto_cache_size_);
  }
  curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, connection_cache_size_);
  if (options_.max_connections_per_host > 0) {
    curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_connections_per_host);
  }
  curl_multi_setopt(multi_.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  return ok_status();
}

CurlLoop::RequestId CurlLoop::send(HttpRequest request, HttpHandlers handlers) {
  auto t = std::make_unique<Transfer>();
  t->id = next_id_.fetch_add(1);
  t->request = std::move(request);
  t->handlers = std::move(handlers);
  const RequestId id = t->id;
  if (in_loop_thread()) {
    begin_transfer(std::move(t));
  } else {
    enqueue(SendCommand{std::move(t)});
  }
  return id;
}

void CurlLoop::cancel(RequestId id) {
  if (in_loop_thread()) {
    cancel_on_loop(id, make_error(ErrorCategory::kCancelled, "request cancelled"));
  } else {
    enqueue(CancelCommand{id});
  }
}

void CurlLoop::enqueue(Command command) {
  {
    std::lock_guard lock(mu_);
    commands_.push_back(std::move(command));
  }
  wake();
}

CurlLoop::TimerId CurlLoop::schedule(std::chrono::nanoseconds delay, std::function<void()> fn) {
  const TimerId id = next_id_.fetch_add(1);
  const SteadyTime due =
      std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay);
  bool earliest;
  {
    std::lock_guard lock(mu_);
    auto it = timers_.emplace(TimerKey{due, id}, std::move(fn)).first;
    timer_due_.emplace(id, due);
    earliest = it == timers_.begin();
  }
  // The loop recomputes its wait each turn; only an earlier timer needs a wake.
  if (earliest && !in_loop_thread()) wake();
  return id;
}

bool CurlLoop::cancel_timer(TimerId id) {
  std::function<void()> dropped;  // destroyed after the lock: it may own the last reference to a call
  std::lock_guard lock(mu_);
  auto it = timer_due_.find(id);
  if (it == timer_due_.end()) return false;
  auto timer = timers_.find(TimerKey{it->second, id});
  dropped = std::move(timer->second);
  timers_.erase(timer);
  timer_due_.erase(it);
  return true;
}

std::chrono::milliseconds CurlLoop::fire_due_timers() {
  constexpr std::chrono::milliseconds kIdleWait{60'000};
  for (;;) {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      if (timers_.empty()) return kIdleWait;
      auto it = timers_.begin();
      const auto now = std::chrono::steady_clock::now();
      if (it->first.due > now) {
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(it->first.due - now);
        return std::min(wait, kIdleWait);
      }
      fn = std::move(it->second);
      timer_due_.erase(it->first.id);
      timers_.erase(it);
    }
    fn();
  }
}

void CurlLoop::run() {
  loop_thread_id_ = std::this_thread::get_id();
  std::vector<Command> commands;
  while (!stopping_) {
    {
      std::lock_guard lock(mu_);
      commands.swap(commands_);
    }
    for (auto& command : commands) {
      if (auto* s = std::get_if<SendCommand>(&command)) {
        begin_transfer(std::move(s->transfer));
      } else {
        cancel_on_loop(std::get<CancelCommand>(command).id, make_error(ErrorCategory::kCancelled, "request cancelled"));
      }
    }
    commands.clear();

    int running = 0;
    turn_start_ = std::chrono::steady_clock::now();
    curl_multi_perform(multi_.get(), &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
      if (msg->msg == CURLMSG_DONE) finish(msg->easy_handle, msg->data.result);
    }
    auto wait = fire_due_timers();
    long curl_wait = -1;
    curl_multi_timeout(multi_.get(), &curl_wait);
    if (curl_wait >= 0) wait = std::min(wait, std::chrono::milliseconds(curl_wait));
    {
      // Commands queued by timer callbacks (or other threads) run next turn
      // without sleeping.
      std::lock_guard lock(mu_);
      if (!commands_.empty()) wait = std::chrono::milliseconds(0);
    }
    if (wait.count() > 0) curl_multi_poll(multi_.get(), nullptr, 0, static_cast<int>(wait.count()), nullptr);
  }
  // Shutdown: fail what is in flight so that no caller waits forever.
  std::map<TimerKey, std::function<void()>> dropped_timers;  // destroyed unlocked, as in cancel_timer
  {
    std::lock_guard lock(mu_);
    commands.swap(commands_);
    dropped_timers.swap(timers_);
    timer_due_.clear();
  }
  dropped_timers.clear();
  for (auto& command : commands) {
    if (auto* s = std::get_if<SendCommand>(&command)) {
      complete(std::move(s->transfer), make_error(ErrorCategory::kCancelled, "transport shut down"));
    }
  }
  commands.clear();
  std::vector<RequestId> ids;
  for (auto& [id, t] : active_) ids.push_back(id);
  for (RequestId id : ids) {
    cancel_on_loop(id, make_error(ErrorCategory::kCancelled, "transport shut down"));
  }
}

void CurlLoop::configure_once(CURL* e) {
  // Options that never change between requests: set when a handle is made,
  // kept across reuse (handles are not curl_easy_reset between requests).
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect must not carry the key elsewhere
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &CurlLoop::on_header);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &CurlLoop::on_write);
}

void CurlLoop::configure(Transfer& t) {
  // Every option a request can vary is set here, on every request, so that
  // nothing leaks from one request to the next on a reused handle.
  CURL* e = t.easy.get();
  const HttpRequest& r = t.request;
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<std::int64_t>(1, r.total_timeout.count())));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(r.max_response_bytes));
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, r.verify_tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, r.verify_tls ? 2L : 0L);
  if (t.easy_ca_file != r.ca_file) {
    // Clients sharing this transport may trust different bundles; a pooled
    // handle must not carry one client's into another's request. A given
    // ca_file replaces the system's trust (bundle and directory) entirely.
    const bool own = !r.ca_file.empty();
    curl_easy_setopt(e, CURLOPT_CAINFO, own ? r.ca_file.c_str() : default_or_null(default_ca_info_));
    curl_easy_setopt(e, CURLOPT_CAPATH, own ? nullptr : default_or_null(default_ca_path_));
    t.easy_ca_file = r.ca_file;
  }
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer);
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);

  t.header_list = header_list_for(r.headers);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list->list.get());
}

std::shared_ptr<const SharedHeaderList> CurlLoop::header_list_for(const Headers& headers) {
  // Building a list costs allocations per line, and libcurl formats a
  // User-Agent set by option anew for every request; a cached list that
  // carries the User-Agent line costs neither.
  constexpr std::size_t kCachedLists = 32;
  for (auto it = header_lists_.rbegin(); it != header_lists_.rend(); ++it) {
    if ((*it)->source == headers) return *it;
  }
  auto shared = std::make_shared<SharedHeaderList>();
  shared->source = headers;
  curl_slist* list = nullptr;
  bool has_content_type = false, has_user_agent = false;
  for (const auto& [name, value] : headers) {
    if (internal::iequals(name, "content-type")) has_content_type = true;
    if (internal::iequals(name, "user-agent")) has_user_agent = true;
    list = curl_slist_append(list, fmt::format("{}: {}", name, value).c_str());
  }
  if (!has_content_type) list = curl_slist_append(list, "Content-Type: application/json");
  if (!has_user_agent) list = curl_slist_append(list, fmt::format("User-Agent: {}", options_.user_agent).c_str());
  // "Expect: 100-continue" would cost a round trip on every large prompt.
  list = curl_slist_append(list, "Expect:");
  shared->list.reset(list);
  if (header_lists_.size() == kCachedLists) header_lists_.erase(header_lists_.begin());  // in-flight users keep theirs
  header_lists_.push_back(shared);
  return shared;
}

void CurlLoop::begin_transfer(std::unique_ptr<Transfer> t) {
  if (stopping_) {
    complete(std::move(t), make_error(ErrorCategory::kCancelled, "transport shut down"));
    return;
  }
  if (!easy_pool_.empty()) {
    t->easy = std::move(easy_pool_.back().easy);
    t->easy_ca_file = std::move(easy_pool_.back().ca_file);
    easy_pool_.pop_back();
  } else {
    t->easy.reset(curl_easy_init());
    if (!t->easy) {
      complete(std::move(t), make_error(ErrorCategory::kConnection, "curl_easy_init failed"));
      return;
    }
    configure_once(t->easy.get());
  }
  configure(*t);
  t->turn_start = &turn_start_;
  t->response.headers.reserve(24);  // a hosted API's replies carry about 20
  t->last_activity = std::chrono::steady_clock::now();
  if (curl_multi_add_handle(multi_.get(), t->easy.get()) != CURLM_OK) {
    complete(std::move(t), make_error(ErrorCategory::kConnection, "curl_multi_add_handle failed"));
    return;
  }
  arm_idle_timer(*t, t->last_activity + t->request.idle_timeout);
  RequestId id = t->id;
  active_.emplace(id, std::move(t));
  if (options_.max_cached_connections == 0 && static_cast<long>(active_.size()) > connection_cache_size_ &&
      connection_cache_size_ < max_auto_cache_size_) {
    // libcurl's own default sizes the cache by the transfers still running
    // when a connection is returned, so the tail of a burst closes
    // connections the next burst needs. Keep room for the largest burst.
    connection_cache_size_ = std::min(static_cast<long>(active_.size()), max_auto_cache_size_);
    curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, connection_cache_size_);
  }
}

void CurlLoop::arm_idle_timer(Transfer& t, SteadyTime due) {
  const RequestId id = t.id;
  auto delay = due - std::chrono::steady_clock::now();
  t.idle_timer = schedule(std::max(delay, decltype(delay)::zero()), [this, id] { on_idle_timer(id); });
}

void CurlLoop::on_idle_timer(RequestId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  Transfer& t = *it->second;
  const SteadyTime due = t.last_activity + t.request.idle_timeout;
  if (std::chrono::steady_clock::now() < due) {
    arm_idle_timer(t, due);  // bytes came since: wait out the rest
    return;
  }
  cancel_on_loop(id, make_error(ErrorCategory::kTimeout, fmt::format("no data received for {} ms (idle timeout)",
                                                                     t.request.idle_timeout.count())));
}

void CurlLoop::deliver_headers(Transfer& t) {
  if (t.headers_delivered) return;
  t.headers_delivered = true;
  long status = 0;
  curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
  t.response.status = static_cast<int>(status);
  if (t.handlers.on_headers) t.handlers.on_headers(t.response.status, t.response.headers);
}

namespace {

// A reply kept whole is allocated once, at the size its Content-Length
// announces (bounded by the request's limit), with room for the JSON
// parser's padding: grown by doubling instead, a 64 KB body is copied five
// times and ends in a 128 KB block, which malloc maps and unmaps per reply.
void reserve_body(Transfer& t, std::string_view content_length) {
  constexpr std::size_t kParserPadding = 64;
  const auto length = internal::parse_int(content_length);
  if (!length || *length <= 0) return;
  const auto bytes = static_cast<std::size_t>(*length);
  if (bytes > t.request.max_response_bytes) return;
  t.response.body.reserve(bytes + kParserPadding);
}

}  // namespace

size_t CurlLoop::on_header(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t n = size * count;
  t.last_activity = *t.turn_start;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    // A new response (after 100 Continue, say). Providers send 20 to 30
    // headers: room for them at once spares the vector's growth, five
    // reallocations that move every header kept so far.
    constexpr std::size_t kTypicalHeaderCount = 32;
    t.response.headers.clear();
    t.response.headers.reserve(kTypicalHeaderCount);
    return n;
  }
  if (line == "\r\n" || line == "\n") {
    // The header block ended: a final response's headers are delivered now,
    // not with the first body byte, so a reply that stalls after its headers
    // is told apart from a route that never answered.
    long status = 0;
    curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200) deliver_headers(t);
    return n;
  }
  // Trailers after a chunked body are not kept: the headers handed to
  // on_headers stay as they were until on_complete (HttpHandlers says so).
  if (t.headers_delivered) return n;
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  const std::string_view name = internal::trim(line.substr(0, colon));
  const std::string_view value = internal::trim(line.substr(colon + 1));
  // Built in place and lower-cased there: one string per name and value, no temporaries.
  auto& [stored_name, stored_value] = t.response.headers.emplace_back(
      std::piecewise_construct, std::forward_as_tuple(name), std::forward_as_tuple(value));
  internal::ascii_lower_in_place(stored_name.data(), stored_name.size());
  if (stored_name == "content-length" && !t.handlers.on_body_chunk) reserve_body(t, stored_value);
  return n;
}

size_t CurlLoop::on_write(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t n = size * count;
  t.last_activity = *t.turn_start;
  // Headers are delivered with the first body byte, when they are final
  // (a 100 Continue or proxy CONNECT reply has been replaced by then).
  deliver_headers(t);
  // Streamed or kept, a reply is bounded: an endless stream of valid events
  // would otherwise grow the caller's text without limit.
  if (n > t.request.max_response_bytes - std::min(t.body_bytes, t.request.max_response_bytes)) {
    t.too_large = true;
    return 0;
  }
  t.body_bytes += n;
  if (t.handlers.on_body_chunk) {
    if (!t.handlers.on_body_chunk(std::string_view(data, n))) {
      t.aborted_by_handler = true;
      return 0;
    }
    return n;
  }
  t.response.body.append(data, n);
  return n;
}

Error error_for_curl_code(CURLcode code, const Transfer& t) {
  std::string detail = t.error_buffer[0] != '\0' ? std::string(t.error_buffer) : curl_easy_strerror(code);
  long os_errno = 0;
  curl_easy_getinfo(t.easy.get(), CURLINFO_OS_ERRNO, &os_errno);
  if (code == CURLE_COULDNT_CONNECT && os_errno == 0) {
    // libcurl keeps no errno when socket() itself failed: ask the system
    // whether a socket can be had at all right now (error path only).
    const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    if (probe >= 0) {
      ::close(probe);
    } else {
      os_errno = errno;
    }
  }
  if (os_errno == EMFILE || os_errno == ENFILE) {
    // libcurl says "Couldn't connect" when socket() fails; the server is not to blame.
    return make_error(ErrorCategory::kConnection,
                      fmt::format("out of file descriptors ({}): this process has too many open files; "
                                  "raise the limit (ulimit -n) or lower the number of calls in flight ({})",
                                  os_errno == EMFILE ? "EMFILE" : "ENFILE", detail));
  }
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return make_error(ErrorCategory::kTimeout, std::move(detail));
    case CURLE_URL_MALFORMAT:
      return make_error(ErrorCategory::kBadRequest, std::move(detail));
    case CURLE_UNSUPPORTED_PROTOCOL:
      // Every URL is http(s) (checked at create), so this is the reply: an
      // HTTP/0.9 answer or a status line that is not HTTP. An upstream fault.
      return make_error(ErrorCategory::kConnection, fmt::format("the server's reply is not HTTP: {}", detail));
    default:
      // Resolution, connect, TLS, reset and truncation failures: no usable
      // response arrived, and another try may well get one.
      return make_error(ErrorCategory::kConnection, std::move(detail));
  }
}

void CurlLoop::finish(CURL* easy, CURLcode code) {
  Transfer* raw = nullptr;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&raw));
  auto it = active_.find(raw->id);
  std::unique_ptr<Transfer> t = std::move(it->second);
  active_.erase(it);
  curl_multi_remove_handle(multi_.get(), easy);
  cancel_timer(t->idle_timer);
  if (code == CURLE_OK) {
    deliver_headers(*t);
    Result<HttpResponse> ok(std::move(t->response));
    complete(std::move(t), std::move(ok));
    return;
  }
  if (t->too_large || code == CURLE_FILESIZE_EXCEEDED) {
    auto e = make_error(ErrorCategory::kTransient, fmt::format("response larger than max_response_bytes ({} bytes)",
                                                               t->request.max_response_bytes));
    complete(std::move(t), std::move(e));
    return;
  }
  if (t->aborted_by_handler) {
    complete(std::move(t), make_error(ErrorCategory::kCancelled, "aborted by the body handler"));
    return;
  }
  auto e = error_for_curl_code(code, *t);
  complete(std::move(t), std::move(e));
}

void CurlLoop::cancel_on_loop(RequestId id, Error error) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  active_.erase(it);
  curl_multi_remove_handle(multi_.get(), t->easy.get());
  cancel_timer(t->idle_timer);
  complete(std::move(t), std::move(error));
}

void CurlLoop::complete(std::unique_ptr<Transfer> t, Result<HttpResponse> result) {
  auto on_complete = std::move(t->handlers.on_complete);
  if (t->easy) {
    // The handle goes back to the pool configured; the pointers it holds to
    // this transfer are replaced before its next use.
    easy_pool_.push_back({std::move(t->easy), std::move(t->easy_ca_file)});
  }
  t.reset();
  if (on_complete) on_complete(std::move(result));
}

// The handle users hold. Its destructor is the only place the loop thread is
// joined, and never from that thread (see the lifetime note at the top).
class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(std::shared_ptr<CurlLoop> loop)
      : loop_(loop), thread_([loop = std::move(loop)] { loop->run(); }) {}
  ~CurlTransport() override {
    loop_->stop();
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }

  RequestId send(HttpRequest request, HttpHandlers handlers) override {
    return loop_->send(std::move(request), std::move(handlers));
  }
  void cancel(RequestId id) override { loop_->cancel(id); }
  TimerId schedule(std::chrono::nanoseconds delay, std::function<void()> fn) override {
    return loop_->schedule(delay, std::move(fn));
  }
  bool cancel_timer(TimerId id) override { return loop_->cancel_timer(id); }
  bool in_loop_thread() const override { return loop_->in_loop_thread(); }

 private:
  std::shared_ptr<CurlLoop> loop_;
  std::thread thread_;
};

}  // namespace

Result<std::shared_ptr<Transport>> make_curl_transport(CurlTransportOptions options) {
  auto loop = std::make_shared<CurlLoop>(std::move(options));
  if (auto s = loop->init(); !s.ok()) return std::move(s).error();
  return std::shared_ptr<Transport>(std::make_shared<CurlTransport>(std::move(loop)));
}

}  // namespace llmguard
