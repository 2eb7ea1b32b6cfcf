// The libcurl event loop. One thread owns the CURLM handle and every CURL
// easy handle; other threads only push commands onto a queue and wake the
// loop with curl_multi_wakeup, so libcurl is never touched concurrently.
//
// Destruction order: the loop thread is told to stop and joined; it cancels
// every live transfer (running on_complete with kCancelled) and drops pending
// timers; then the easy handles in the pool, then the multi handle, are freed.
#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
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

struct MultiDeleter { void operator()(CURLM* m) const { curl_multi_cleanup(m); } };
struct EasyDeleter { void operator()(CURL* e) const { curl_easy_cleanup(e); } };
struct SlistDeleter { void operator()(curl_slist* s) const { curl_slist_free_all(s); } };
using MultiHandle = std::unique_ptr<CURLM, MultiDeleter>;
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

void ensure_curl_global_init() {
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)code;
}

Error transport_error(ErrorCategory category, std::string message) {
  Error e;
  e.category = category;
  e.message = std::move(message);
  return e;
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
  std::shared_ptr<const SharedHeaderList> header_list;
  HttpResponse response;
  bool headers_delivered = false;
  bool too_large = false;
  bool aborted_by_handler = false;
  bool idle_expired = false;
  SteadyTime last_activity;
  Transport::TimerId idle_timer = 0;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

class CurlTransport final : public Transport, public std::enable_shared_from_this<CurlTransport> {
 public:
  explicit CurlTransport(CurlTransportOptions options) : options_(std::move(options)) {}
  ~CurlTransport() override;

  Status start();
  RequestId send(HttpRequest request, HttpHandlers handlers) override;
  void cancel(RequestId id) override;
  TimerId schedule(std::chrono::nanoseconds delay, std::function<void()> fn) override;
  bool cancel_timer(TimerId id) override;
  bool in_loop_thread() const override { return std::this_thread::get_id() == loop_thread_id_.load(); }

 private:
  struct SendCommand { std::unique_ptr<Transfer> transfer; };
  struct CancelCommand { RequestId id; };
  using Command = std::variant<SendCommand, CancelCommand>;

  void run();
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
  std::thread loop_;
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
  std::vector<EasyHandle> easy_pool_;
  std::vector<std::shared_ptr<const SharedHeaderList>> header_lists_;  // newest last
  long connection_cache_size_ = 0;  // CURLMOPT_MAXCONNECTS as last set
};

CurlTransport::~CurlTransport() {
  stopping_ = true;
  if (multi_) wake();
  if (loop_.joinable()) loop_.join();
  easy_pool_.clear();
  multi_.reset();
}

Status CurlTransport::start() {
  ensure_curl_global_init();
  multi_.reset(curl_multi_init());
  if (!multi_) return transport_error(ErrorCategory::kConnection, "curl_multi_init failed");
  connection_cache_size_ = options_.max_cached_connections > 0 ? options_.max_cached_connections : 16;
  curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, connection_cache_size_);
  if (options_.max_connections_per_host > 0) {
    curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_connections_per_host);
  }
  curl_multi_setopt(multi_.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  loop_ = std::thread([this] { run(); });
  return ok_status();
}

Transport::RequestId CurlTransport::send(HttpRequest request, HttpHandlers handlers) {
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

void CurlTransport::cancel(RequestId id) {
  if (in_loop_thread()) {
    cancel_on_loop(id, transport_error(ErrorCategory::kCancelled, "request cancelled"));
  } else {
    enqueue(CancelCommand{id});
  }
}

void CurlTransport::enqueue(Command command) {
  {
    std::lock_guard lock(mu_);
    commands_.push_back(std::move(command));
  }
  wake();
}

Transport::TimerId CurlTransport::schedule(std::chrono::nanoseconds delay, std::function<void()> fn) {
  const TimerId id = next_id_.fetch_add(1);
  const SteadyTime due = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay);
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

bool CurlTransport::cancel_timer(TimerId id) {
  std::lock_guard lock(mu_);
  auto it = timer_due_.find(id);
  if (it == timer_due_.end()) return false;
  timers_.erase(TimerKey{it->second, id});
  timer_due_.erase(it);
  return true;
}

std::chrono::milliseconds CurlTransport::fire_due_timers() {
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

void CurlTransport::run() {
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
        cancel_on_loop(std::get<CancelCommand>(command).id,
                       transport_error(ErrorCategory::kCancelled, "request cancelled"));
      }
    }
    commands.clear();

    int running = 0;
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
  {
    std::lock_guard lock(mu_);
    for (auto& command : commands_) {
      if (auto* s = std::get_if<SendCommand>(&command)) {
        active_.emplace(s->transfer->id, std::move(s->transfer));
      }
    }
    commands_.clear();
    timers_.clear();
    timer_due_.clear();
  }
  std::vector<RequestId> ids;
  for (auto& [id, t] : active_) ids.push_back(id);
  for (RequestId id : ids) {
    cancel_on_loop(id, transport_error(ErrorCategory::kCancelled, "transport shut down"));
  }
}

void CurlTransport::configure_once(CURL* e) {
  // Options that never change between requests: set when a handle is made,
  // kept across reuse (handles are not curl_easy_reset between requests).
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect must not carry the key elsewhere
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &CurlTransport::on_header);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &CurlTransport::on_write);
}

void CurlTransport::configure(Transfer& t) {
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
  // Only when given: NULL would drop the distribution's default bundle. A
  // client's requests all carry the same value, so pooled handles agree.
  if (!r.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, r.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer);
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);

  t.header_list = header_list_for(r.headers);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list->list.get());
}

std::shared_ptr<const SharedHeaderList> CurlTransport::header_list_for(const Headers& headers) {
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

void CurlTransport::begin_transfer(std::unique_ptr<Transfer> t) {
  if (stopping_) {
    complete(std::move(t), transport_error(ErrorCategory::kCancelled, "transport shut down"));
    return;
  }
  if (!easy_pool_.empty()) {
    t->easy = std::move(easy_pool_.back());
    easy_pool_.pop_back();
  } else {
    t->easy.reset(curl_easy_init());
    if (!t->easy) {
      complete(std::move(t), transport_error(ErrorCategory::kConnection, "curl_easy_init failed"));
      return;
    }
    configure_once(t->easy.get());
  }
  configure(*t);
  t->response.body.reserve(4096);
  t->last_activity = std::chrono::steady_clock::now();
  if (curl_multi_add_handle(multi_.get(), t->easy.get()) != CURLM_OK) {
    complete(std::move(t), transport_error(ErrorCategory::kConnection, "curl_multi_add_handle failed"));
    return;
  }
  arm_idle_timer(*t, t->last_activity + t->request.idle_timeout);
  RequestId id = t->id;
  active_.emplace(id, std::move(t));
  if (options_.max_cached_connections == 0 && static_cast<long>(active_.size()) > connection_cache_size_) {
    // libcurl's own default sizes the cache by the transfers still running
    // when a connection is returned, so the tail of a burst closes
    // connections the next burst needs. Keep room for the largest burst.
    connection_cache_size_ = static_cast<long>(active_.size());
    curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, connection_cache_size_);
  }
}

void CurlTransport::arm_idle_timer(Transfer& t, SteadyTime due) {
  const RequestId id = t.id;
  auto delay = due - std::chrono::steady_clock::now();
  t.idle_timer = schedule(std::max(delay, decltype(delay)::zero()), [this, id] { on_idle_timer(id); });
}

void CurlTransport::on_idle_timer(RequestId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  Transfer& t = *it->second;
  const SteadyTime due = t.last_activity + t.request.idle_timeout;
  if (std::chrono::steady_clock::now() < due) {
    arm_idle_timer(t, due);  // bytes came since: wait out the rest
    return;
  }
  cancel_on_loop(id, transport_error(ErrorCategory::kTimeout,
                                     fmt::format("no data received for {} ms (idle timeout)",
                                                 t.request.idle_timeout.count())));
}

void CurlTransport::deliver_headers(Transfer& t) {
  if (t.headers_delivered) return;
  t.headers_delivered = true;
  long status = 0;
  curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
  t.response.status = static_cast<int>(status);
  if (t.handlers.on_headers) t.handlers.on_headers(t.response.status, t.response.headers);
}

size_t CurlTransport::on_header(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t n = size * count;
  t.last_activity = std::chrono::steady_clock::now();
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    t.response.headers.clear();  // a new response (after 100 Continue, say)
    return n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  t.response.headers.emplace_back(internal::to_lower(internal::trim(line.substr(0, colon))),
                                  std::string(internal::trim(line.substr(colon + 1))));
  return n;
}

size_t CurlTransport::on_write(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t n = size * count;
  t.last_activity = std::chrono::steady_clock::now();
  // Headers are delivered with the first body byte, when they are final
  // (a 100 Continue or proxy CONNECT reply has been replaced by then).
  deliver_headers(t);
  if (t.handlers.on_body_chunk) {
    if (!t.handlers.on_body_chunk(std::string_view(data, n))) {
      t.aborted_by_handler = true;
      return 0;
    }
    return n;
  }
  if (t.response.body.size() + n > t.request.max_response_bytes) {
    t.too_large = true;
    return 0;
  }
  t.response.body.append(data, n);
  return n;
}

Error error_for_curl_code(CURLcode code, const Transfer& t) {
  std::string detail = t.error_buffer[0] != '\0' ? std::string(t.error_buffer) : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return transport_error(ErrorCategory::kTimeout, std::move(detail));
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return transport_error(ErrorCategory::kBadRequest, std::move(detail));
    default:
      // Resolution, connect, TLS, reset and truncation failures: no usable
      // response arrived, and another try may well get one.
      return transport_error(ErrorCategory::kConnection, std::move(detail));
  }
}

void CurlTransport::finish(CURL* easy, CURLcode code) {
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
    auto e = transport_error(ErrorCategory::kTransient,
                             fmt::format("response larger than max_response_bytes ({} bytes)",
                                         t->request.max_response_bytes));
    complete(std::move(t), std::move(e));
    return;
  }
  if (t->aborted_by_handler) {
    complete(std::move(t), transport_error(ErrorCategory::kCancelled, "aborted by the body handler"));
    return;
  }
  auto e = error_for_curl_code(code, *t);
  complete(std::move(t), std::move(e));
}

void CurlTransport::cancel_on_loop(RequestId id, Error error) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  active_.erase(it);
  curl_multi_remove_handle(multi_.get(), t->easy.get());
  cancel_timer(t->idle_timer);
  complete(std::move(t), std::move(error));
}

void CurlTransport::complete(std::unique_ptr<Transfer> t, Result<HttpResponse> result) {
  auto on_complete = std::move(t->handlers.on_complete);
  if (t->easy) {
    // The handle goes back to the pool configured; the pointers it holds to
    // this transfer are replaced before its next use.
    easy_pool_.push_back(std::move(t->easy));
  }
  t.reset();
  if (on_complete) on_complete(std::move(result));
}

}  // namespace

Result<std::shared_ptr<Transport>> make_curl_transport(CurlTransportOptions options) {
  auto transport = std::make_shared<CurlTransport>(std::move(options));
  if (auto s = transport->start(); !s.ok()) return std::move(s).error();
  return std::shared_ptr<Transport>(std::move(transport));
}

}  // namespace llmguard
