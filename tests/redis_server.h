// A real redis-server for a test: started on a free loopback port and a unix
// socket in a scratch directory, with nothing saved to disk, and stopped (by
// its pid) when the object goes. Ready when the server says so on its
// standard output; nothing polls.
#ifndef LLMGUARD_TESTS_REDIS_SERVER_H_
#define LLMGUARD_TESTS_REDIS_SERVER_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace llmguard::testing {

class RedisServer {
 public:
  struct Options {
    std::string password;  // requirepass
    int port = 0;          // 0: a free one
  };

  // nullopt when redis-server cannot be started (not installed).
  static std::optional<RedisServer> start(const Options& options) {
    RedisServer s;
    char dir[] = "/tmp/llmguard-redis-XXXXXX";
    if (!mkdtemp(dir)) return std::nullopt;
    s.dir_ = dir;
    s.port_ = options.port != 0 ? options.port : free_port();
    if (!s.spawn(options)) return std::nullopt;
    return s;
  }

  RedisServer(RedisServer&& other) noexcept { *this = std::move(other); }
  RedisServer& operator=(RedisServer&& other) noexcept {
    std::swap(pid_, other.pid_);
    std::swap(port_, other.port_);
    std::swap(dir_, other.dir_);
    return *this;
  }
  ~RedisServer() {
    stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  int port() const { return port_; }
  std::string socket_path() const { return dir_ + "/redis.sock"; }
  std::string url(int db = 0) const { return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db); }

  // As a crash or an operator would: SIGKILL, then reaped.
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Starts it again on the same port and socket (a restart: its memory is gone).
  bool restart(const Options& options) {
    stop();
    return spawn(options);
  }

  // A loopback port nothing listens on, for now.
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

 private:
  RedisServer() = default;

  bool spawn(const Options& options) {
    std::vector<std::string> args = {"redis-server", "--port",    std::to_string(port_),
                                     "--bind",       "127.0.0.1", "--unixsocket",
                                     socket_path(),  "--save",    "",
                                     "--appendonly", "no",        "--dir",
                                     dir_,           "--logfile", "",
                                     "--daemonize",  "no"};
    if (!options.password.empty()) {
      args.push_back("--requirepass");
      args.push_back(options.password);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return false;
    pid_ = ::fork();
    if (pid_ == 0) {
      // The server dies with the test, even one that crashes.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(out[1], STDOUT_FILENO);
      ::execvp("redis-server", argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    if (pid_ < 0) {
      ::close(out[0]);
      pid_ = -1;
      return false;
    }
    // Redis ignores SIGPIPE: once it is ready its further log lines may go nowhere.
    const bool ready = wait_for_line(out[0], "Ready to accept connections");
    ::close(out[0]);
    if (!ready) stop();
    return ready;
  }

  static bool wait_for_line(int fd, const std::string& marker) {
    std::string seen;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen.find(marker) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now()).count();
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      char buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return false;  // it exited
      seen.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

}  // namespace llmguard::testing

#endif  // LLMGUARD_TESTS_REDIS_SERVER_H_
