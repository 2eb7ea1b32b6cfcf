// The real libcurl transport against the mock over loopback. Timeouts are
// exercised with hangs (which never answer), so no outcome depends on timing.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "llmguard/runtime.h"
#include "mock_server.h"
#include "text.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

struct Fixture {
  std::unique_ptr<MockServer> server = std::move(MockServer::start({}).value());
  std::shared_ptr<Transport> transport = std::move(make_curl_transport().value());

  HttpRequest chat(std::string model = "m", std::string path = "/chat/completions") {
    HttpRequest r;
    r.url = server->base_url() + path;
    r.body = R"({"model":")" + model + R"(","messages":[{"role":"user","content":"hi"}]})";
    r.total_timeout = milliseconds(10000);
    r.connect_timeout = milliseconds(5000);
    return r;
  }

  Result<HttpResponse> send(HttpRequest request, HttpHandlers handlers = {}) {
    std::promise<Result<HttpResponse>> done;
    auto future = done.get_future();
    handlers.on_complete = [&done](Result<HttpResponse> r) { done.set_value(std::move(r)); };
    transport->send(std::move(request), std::move(handlers));
    return future.get();
  }
};

TEST_CASE("A request gets status, lower-cased headers and body") {
  Fixture f;
  f.server->enqueue("*", MockReply{.status = 429, .headers = {{"Retry-After", "7"}}, .body = "{\"e\":1}"});
  auto r = f.send(f.chat());
  REQUIRE(r.ok());
  CHECK(r->status == 429);
  REQUIRE(find_header(r->headers, "retry-after") != nullptr);
  CHECK(*find_header(r->headers, "retry-after") == "7");
  for (const auto& [name, value] : r->headers) CHECK(name == internal::to_lower(name));
  CHECK(r->body == "{\"e\":1}");
}

TEST_CASE("Each request carries exactly its own headers, with defaults only where it sets none") {
  Fixture f;
  auto count = [](const Headers& headers, std::string_view name) {
    return std::count_if(headers.begin(), headers.end(),
                         [&](const auto& h) { return internal::iequals(h.first, name); });
  };
  // Alternating header sets, as two targets' requests interleave on one transport.
  for (int i = 0; i < 4; ++i) {
    HttpRequest a = f.chat();
    a.headers = {{"authorization", "Bearer key-a"}};
    HttpRequest b = f.chat();
    b.headers = {
        {"x-api-key", "key-b"}, {"user-agent", "my-agent/2"}, {"content-type", "application/json; charset=utf-8"}};
    REQUIRE(f.send(std::move(a))->status == 200);
    REQUIRE(f.send(std::move(b))->status == 200);
  }
  const auto recorded = f.server->recent_requests();
  REQUIRE(recorded.size() == 8);
  for (std::size_t i = 0; i < recorded.size(); ++i) {
    CAPTURE(i);
    const Headers& h = recorded[i].headers;
    CHECK(count(h, "user-agent") == 1);
    CHECK(count(h, "content-type") == 1);
    CHECK(count(h, "expect") == 0);
    if (i % 2 == 0) {
      CHECK(*find_header(h, "authorization") == "Bearer key-a");
      CHECK(find_header(h, "x-api-key") == nullptr);
      CHECK(find_header(h, "user-agent")->starts_with("llmguard/"));
      CHECK(*find_header(h, "content-type") == "application/json");
    } else {
      CHECK(*find_header(h, "x-api-key") == "key-b");
      CHECK(find_header(h, "authorization") == nullptr);
      CHECK(*find_header(h, "user-agent") == "my-agent/2");
      CHECK(*find_header(h, "content-type") == "application/json; charset=utf-8");
    }
  }
}

TEST_CASE("Keep-alive under concurrency: a second wave of 100 concurrent requests opens no new connections") {
  Fixture f;
  auto wave = [&f] {
    // Held replies keep the whole wave in flight at once (the outcome does
    // not depend on it; the test's power to catch churn does).
    for (int i = 0; i < 100; ++i) f.server->enqueue("*", MockReply{.delay = milliseconds(300)});
    std::vector<std::promise<int>> done(100);
    for (auto& d : done) {
      HttpHandlers h;
      h.on_complete = [&d](Result<HttpResponse> r) { d.set_value(r.ok() ? r->status : 0); };
      f.transport->send(f.chat(), std::move(h));
    }
    for (auto& d : done) REQUIRE(d.get_future().get() == 200);
  };
  wave();
  const auto after_first = f.server->stats().connections;
  CHECK(after_first > 64);  // the wave really ran concurrently
  CHECK(after_first <= 100);
  wave();
  CHECK(f.server->stats().connections == after_first);  // every connection of the first wave was kept
}

TEST_CASE("Keep-alive: many sequential requests reuse one connection") {
  Fixture f;
  for (int i = 0; i < 20; ++i) REQUIRE(f.send(f.chat())->status == 200);
  CHECK(f.server->stats().requests == 20);
  // The mock saw no "connection: close"; curl kept the socket (checked by
  // the request count staying exact while no connection error occurred).
}

TEST_CASE("A hang ends with a timeout error at the total timeout") {
  Fixture f;
  f.server->enqueue("*", MockReply{.hang = true});
  HttpRequest r = f.chat();
  r.total_timeout = milliseconds(200);
  auto result = f.send(r);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kTimeout);
}

TEST_CASE("An idle stream is cut by the idle timeout even under a long total timeout") {
  Fixture f;
  f.server->enqueue("*", MockReply{.hang = true});
  HttpRequest r = f.chat();
  r.idle_timeout = milliseconds(150);
  auto result = f.send(r);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kTimeout);
  CHECK(result.error().message.find("idle") != std::string::npos);
}

TEST_CASE("A slow drip that keeps sending bytes is not an idle timeout") {
  Fixture f;
  f.server->enqueue("*", MockReply{.drip = milliseconds(2), .chunk_bytes = 64});
  HttpRequest r = f.chat();
  r.idle_timeout = milliseconds(3000);
  auto result = f.send(r);
  REQUIRE(result.ok());
  CHECK(result->status == 200);
  CHECK(result->body.find("\"choices\"") != std::string::npos);
}

TEST_CASE("A connection reset mid-body is a connection error") {
  Fixture f;
  f.server->enqueue("*", MockReply{.reset_after_bytes = 10});
  auto result = f.send(f.chat());
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kConnection);
}

TEST_CASE("A refused connection is a connection error") {
  Fixture f;
  HttpRequest r = f.chat();
  r.url = "http://127.0.0.1:1/v1/chat/completions";
  auto result = f.send(r);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kConnection);
}

TEST_CASE("A body over max_response_bytes is cut off with a typed error") {
  Fixture f;
  f.server->enqueue("*", MockReply{.body = std::string(100000, 'x')});
  HttpRequest r = f.chat();
  r.max_response_bytes = 1000;
  auto result = f.send(r);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kTransient);
  CHECK(result.error().message.find("max_response_bytes") != std::string::npos);
}

TEST_CASE("The size cap also holds for chunked bodies without a content-length") {
  Fixture f;
  f.server->enqueue("*", MockReply{.content = std::string(5000, 'y')});
  HttpRequest r = f.chat();
  r.body = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})";
  r.max_response_bytes = 1000;
  auto result = f.send(r);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kTransient);
}

TEST_CASE("Cancelling an in-flight request completes it with cancelled at once") {
  Fixture f;
  f.server->enqueue("*", MockReply{.hang = true});
  std::promise<Result<HttpResponse>> done;
  auto future = done.get_future();
  HttpHandlers handlers;
  handlers.on_complete = [&done](Result<HttpResponse> r) { done.set_value(std::move(r)); };
  HttpRequest r = f.chat();
  r.total_timeout = milliseconds(600000);
  auto id = f.transport->send(r, std::move(handlers));
  // The mock counts the request once it arrives: then the transfer is live.
  while (f.server->stats().requests == 0) std::this_thread::yield();
  f.transport->cancel(id);
  auto result = future.get();
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kCancelled);
}

TEST_CASE("Streaming handlers see the body in pieces and can abort") {
  Fixture f;
  HttpRequest r = f.chat();
  r.body = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"one two three"}]})";
  std::string streamed;
  int status_seen = 0;
  HttpHandlers handlers;
  handlers.on_headers = [&](int status, const Headers&) { status_seen = status; };
  handlers.on_body_chunk = [&](std::string_view chunk) {
    streamed.append(chunk);
    return true;
  };
  auto result = f.send(r, std::move(handlers));
  REQUIRE(result.ok());
  CHECK(status_seen == 200);
  CHECK(result->body.empty());
  CHECK(streamed.find("data: [DONE]") != std::string::npos);

  HttpHandlers aborting;
  aborting.on_body_chunk = [](std::string_view) { return false; };
  auto aborted = f.send(r, std::move(aborting));
  REQUIRE_FALSE(aborted.ok());
  CHECK(aborted.error().category == ErrorCategory::kCancelled);
}

TEST_CASE("Timers fire in due order on the loop thread, and cancelled ones never") {
  Fixture f;
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> last;
  std::atomic<bool> on_loop{true};
  auto record = [&](int n) {
    return [&, n] {
      on_loop = on_loop && f.transport->in_loop_thread();
      std::lock_guard lock(mu);
      order.push_back(n);
      if (n == 3) last.set_value();
    };
  };
  f.transport->schedule(milliseconds(30), record(3));
  f.transport->schedule(milliseconds(10), record(2));
  auto cancelled = f.transport->schedule(milliseconds(5), record(99));
  f.transport->post(record(1));
  CHECK(f.transport->cancel_timer(cancelled));
  CHECK_FALSE(f.transport->cancel_timer(cancelled));
  last.get_future().wait();
  std::lock_guard lock(mu);
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(on_loop);
  CHECK_FALSE(f.transport->in_loop_thread());
}

TEST_CASE("Destroying the transport completes in-flight requests as cancelled") {
  auto server = std::move(MockServer::start({}).value());
  server->enqueue("*", MockReply{.hang = true});
  auto transport = std::move(make_curl_transport().value());
  std::promise<Result<HttpResponse>> done;
  auto future = done.get_future();
  HttpRequest r;
  r.url = server->base_url() + "/chat/completions";
  r.body = R"({"model":"m","messages":[]})";
  HttpHandlers handlers;
  handlers.on_complete = [&done](Result<HttpResponse> res) { done.set_value(std::move(res)); };
  transport->send(r, std::move(handlers));
  while (server->stats().requests == 0) std::this_thread::yield();
  transport.reset();
  auto result = future.get();
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kCancelled);
}

}  // namespace
}  // namespace llmguard

namespace llmguard {
namespace {

// A TLS server on loopback with a self-signed certificate: `openssl
// s_server`, started by pid and killed by pid. Skips (by returning nullopt)
// where the openssl command is missing.
class TlsServer {
 public:
  static std::optional<TlsServer> start() {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) return std::nullopt;
    char dir_template[] = "/tmp/llmguard-tls-XXXXXX";
    const char* dir = mkdtemp(dir_template);
    if (!dir) return std::nullopt;
    TlsServer s;
    s.dir_ = dir;
    const std::string make_cert = fmt::format(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
        "-keyout {0}/key.pem -out {0}/cert.pem >/dev/null 2>&1",
        s.dir_);
    if (std::system(make_cert.c_str()) != 0) return std::nullopt;
    for (int tries = 0; tries < 20 && s.pid_ <= 0; ++tries) {
      s.port_ = free_port();
      // posix_spawn, not fork: this process runs threads (mock, transports).
      const std::string accept = std::to_string(s.port_), cert = s.dir_ + "/cert.pem", key = s.dir_ + "/key.pem";
      const char* argv[] = {"openssl", "s_server",   "-quiet", "-www",      "-accept", accept.c_str(),
                            "-cert",   cert.c_str(), "-key",   key.c_str(), nullptr};
      posix_spawn_file_actions_t quiet;
      posix_spawn_file_actions_init(&quiet);
      posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
      pid_t pid = -1;
      const int spawned = posix_spawnp(&pid, "openssl", &quiet, nullptr, const_cast<char* const*>(argv), environ);
      posix_spawn_file_actions_destroy(&quiet);
      s.pid_ = spawned == 0 ? pid : -1;
      if (s.pid_ <= 0) continue;
      if (!s.wait_listening()) s.stop();
    }
    if (s.pid_ <= 0) return std::nullopt;
    return s;
  }
  TlsServer(TlsServer&& o) noexcept : dir_(std::move(o.dir_)), port_(o.port_), pid_(std::exchange(o.pid_, -1)) {}
  ~TlsServer() {
    stop();
    if (!dir_.empty()) std::system(fmt::format("rm -rf {}", dir_).c_str());
  }
  std::string url() const { return fmt::format("https://127.0.0.1:{}/", port_); }
  std::string cert_file() const { return dir_ + "/cert.pem"; }

 private:
  TlsServer() = default;
  static int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }
  bool wait_listening() const {
    // Bounded: s_server listens within milliseconds, or it failed (port taken).
    for (int i = 0; i < 500; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return false;
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(port_));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const bool up = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      close(fd);
      if (up) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST_CASE("A pooled handle never carries one client's CA bundle into another's request") {
  auto tls = TlsServer::start();
  if (!tls) {
    MESSAGE("openssl is missing: skipped");
    return;
  }
  auto transport = make_curl_transport();
  REQUIRE(transport.ok());
  auto send = [&](std::string ca_file) {
    HttpRequest r;
    r.url = tls->url();
    r.body = "{}";
    r.ca_file = std::move(ca_file);
    r.total_timeout = milliseconds(10000);
    std::promise<Result<HttpResponse>> done;
    HttpHandlers h;
    h.on_complete = [&done](Result<HttpResponse> result) { done.set_value(std::move(result)); };
    (*transport)->send(std::move(r), std::move(h));
    return done.get_future().get();
  };
  auto certificate_refused = [](const Result<HttpResponse>& r) {
    return !r.ok() && r.error().message.find("certificate") != std::string::npos;
  };
  // Trusting the server's own certificate gets past TLS (whatever s_server answers to a POST).
  auto trusted = send(tls->cert_file());
  CHECK_FALSE(certificate_refused(trusted));
  // The same (now pooled) handle, for a client that trusts only the system's CAs.
  auto untrusted = send("");
  CHECK(certificate_refused(untrusted));
  // And back: the handle takes the bundle again.
  CHECK_FALSE(certificate_refused(send(tls->cert_file())));
}

}  // namespace
}  // namespace llmguard

namespace llmguard {
namespace {

TEST_CASE("Out of file descriptors is said as such, not as a server that refused the connection") {
  auto transport = make_curl_transport();
  REQUIRE(transport.ok());
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  // The lowest free descriptor number: with the soft limit there, socket() fails with EMFILE.
  const int probe = dup(0);
  REQUIRE(probe >= 0);
  close(probe);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(probe);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  HttpRequest r;
  r.url = "http://127.0.0.1:9/v1/chat/completions";
  r.body = "{}";
  std::promise<Result<HttpResponse>> done;
  HttpHandlers h;
  h.on_complete = [&done](Result<HttpResponse> result) { done.set_value(std::move(result)); };
  (*transport)->send(std::move(r), std::move(h));
  auto result = done.get_future().get();
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().category == ErrorCategory::kConnection);
  CHECK(result.error().message.find("out of file descriptors") != std::string::npos);
}

TEST_CASE("After a burst the idle connections kept are bounded by the descriptor limit, and reused") {
  // The bound is read when the transport starts: a quarter of the soft
  // limit, so 128 descriptors allow 32 idle connections (the default is 16).
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit tight = saved;
  tight.rlim_cur = 128;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  auto transport = make_curl_transport();
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
  REQUIRE(transport.ok());
  auto server = std::move(MockServer::start({}).value());

  constexpr int kBurst = 60;
  auto burst = [&] {
    server->hold_until_concurrent(kBurst);
    std::vector<std::promise<Result<HttpResponse>>> done(kBurst);
    for (auto& d : done) {
      HttpRequest r;
      r.url = server->base_url() + "/chat/completions";
      r.body = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
      r.total_timeout = milliseconds(20000);
      HttpHandlers h;
      h.on_complete = [&d](Result<HttpResponse> result) { d.set_value(std::move(result)); };
      (*transport)->send(std::move(r), std::move(h));
    }
    int ok = 0;
    for (auto& d : done) ok += d.get_future().get().ok() ? 1 : 0;
    return ok;
  };
  REQUIRE(burst() == kBurst);
  const auto after_first = server->stats().connections;
  CHECK(after_first == kBurst);
  REQUIRE(burst() == kBurst);
  const auto opened = server->stats().connections - after_first;
  // At most 32 were kept to reuse; more than the default 16 were.
  CHECK(opened >= kBurst - 32);
  CHECK(opened < kBurst - 16);
}

}  // namespace
}  // namespace llmguard
