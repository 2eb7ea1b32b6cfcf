#include "credentials.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "text.h"

extern char** environ;

namespace llmguard::internal {
namespace {

constexpr std::size_t kMaxOutput = 64 * 1024;
// A token is refreshed this long before it expires, so that no request
// leaves with one that runs out on the way.
constexpr std::chrono::seconds kExpiryMargin{60};

Error command_error(const std::string& name, std::string_view what) {
  return make_error(ErrorCategory::kAuth, fmt::format("api_key_command {} {}", name, what));
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

StopSignal::StopSignal() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

StopSignal::~StopSignal() {
  if (fd_ >= 0) ::close(fd_);
}

void StopSignal::stop() {
  if (stopped_.exchange(true, std::memory_order_acq_rel)) return;
  if (fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
  }
}

Result<std::string> run_credential_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                           const StopSignal* stop) {
  if (argv.empty() || argv[0].empty()) return make_error(ErrorCategory::kBadRequest, "api_key_command is empty");
  const std::string& name = argv[0];
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return command_error(name, "could not start: no pipe");
  Fd read_end{pipe_fds[0]}, write_end{pipe_fds[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.fd, STDOUT_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, name.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return command_error(name, fmt::format("could not start: {}", std::strerror(spawned)));
  ::close(write_end.fd);
  write_end.fd = -1;

  // One loop watches the output, the process's exit and the stop signal:
  // a command that closes its stdout and lingers is bounded by the timeout too.
  Fd exit_fd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
  std::string out;
  bool output_ended = false, exited = false;
  bool too_long = false, timed_out = false, stopped = false, unreadable = false;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (!output_ended || !exited) {
    if (output_ended && exit_fd.fd < 0) {  // no pidfd (an old kernel): wait as before
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      exited = true;
      break;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (stop && stop->stopped()) {
      stopped = true;
      break;
    }
    pollfd p[3] = {{.fd = output_ended ? -1 : read_end.fd, .events = POLLIN, .revents = 0},
                   {.fd = exited ? -1 : exit_fd.fd, .events = POLLIN, .revents = 0},
                   {.fd = stop ? stop->fd() : -1, .events = POLLIN, .revents = 0}};
    const int ready = ::poll(p, 3, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      unreadable = true;
      break;
    }
    if (p[1].revents != 0) {
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      exited = true;
    }
    if (p[0].revents == 0) continue;  // the loop's head sees a deadline or a stop
    const ssize_t n = ::read(read_end.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // end of output (or a read error: judged by the exit status)
      output_ended = true;
      continue;
    }
    if (out.size() + static_cast<std::size_t>(n) > kMaxOutput) {
      too_long = true;
      break;
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (stopped) {
    return make_error(ErrorCategory::kCancelled,
                      fmt::format("api_key_command {} was killed: the client was closed", name));
  }
  if (timed_out) return command_error(name, fmt::format("did not finish within {} ms and was killed", timeout.count()));
  if (too_long) return command_error(name, "printed more than 64 KiB; a token was expected");
  if (unreadable) return command_error(name, "could not be watched: poll() failed, so it was killed");
  if (WIFSIGNALED(status)) return command_error(name, fmt::format("was killed by signal {}", WTERMSIG(status)));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return command_error(name, fmt::format("exited with status {} (its stderr is this process's)",
                                           WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  const std::string_view token = trim(out);
  if (token.empty()) return command_error(name, "printed no token");
  if (token.find_first_of("\r\n") != std::string_view::npos) {
    return command_error(name, "printed more than one line; a token was expected");
  }
  return std::string(token);
}

std::optional<CredentialFetch> credential_source_of(const Target& target) {
  if (target.credential_source) {
    return CredentialFetch([source = target.credential_source](const StopSignal&) { return source(); });
  }
  if (target.api_key_command.empty()) return std::nullopt;
  return CredentialFetch([argv = target.api_key_command,
                          timeout = target.api_key_command_timeout](const StopSignal& stop) -> Result<Credential> {
    auto token = run_credential_command(argv, timeout, &stop);
    if (!token.ok()) return std::move(token).error();
    return Credential{.token = std::move(*token)};
  });
}

CredentialCache::CredentialCache(CredentialFetch fetch, std::chrono::milliseconds ttl,
                                 std::function<Headers(std::string_view)> auth_headers, Clock& clock)
    : fetch_(std::move(fetch)), ttl_(ttl), auth_headers_(std::move(auth_headers)), clock_(clock) {}

CredentialCache::~CredentialCache() {
  stop();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  // Never the worker's own last reference: the callbacks hand their calls to
  // the loop (Call::await_credential).
  if (worker_.joinable()) worker_.join();
}

void CredentialCache::stop() {
  stop_.stop();
  std::unique_lock lock(mu_);
  if (worker_.get_id() == std::this_thread::get_id()) return;
  idle_.wait(lock, [this] { return !fetching_; });
}

std::optional<Headers> CredentialCache::current() {
  std::lock_guard lock(mu_);
  if (!headers_ || clock_.wall_now() >= good_until_) return std::nullopt;
  return headers_;
}

void CredentialCache::refresh(std::function<void(std::optional<Error>)> done) {
  {
    std::lock_guard lock(mu_);
    waiting_.push_back(std::move(done));
    fetch_requested_ = true;
    if (!worker_.joinable()) worker_ = std::thread([this] { run_fetches(); });
  }
  wake_.notify_all();
}

void CredentialCache::invalidate(const Headers& headers) {
  std::lock_guard lock(mu_);
  if (headers_ && *headers_ == headers) headers_.reset();
}

std::vector<std::string> CredentialCache::tokens_seen() {
  std::lock_guard lock(mu_);
  return seen_;
}

void CredentialCache::run_fetches() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || fetch_requested_; });
    if (stopping_) break;
    fetch_requested_ = false;
    fetching_ = true;
    lock.unlock();
    Result<Credential> fetched =
        stop_.stopped() ? Result<Credential>(make_error(ErrorCategory::kCancelled, "the client was closed"))
                        : fetch_(stop_);  // may block: no lock held
    lock.lock();
    std::optional<Error> error;
    if (!fetched.ok()) {
      error = std::move(fetched).error();
      if (error->category == ErrorCategory::kUnknown) error->category = ErrorCategory::kAuth;
    } else if (fetched->token.empty() || fetched->token.find_first_of("\r\n") != std::string::npos) {
      error =
          make_error(ErrorCategory::kAuth, "the credential source returned an empty token or one with a line break");
    } else {
      const auto now = clock_.wall_now();
      auto until = now + ttl_;
      if (fetched->expires_at) until = std::min(until, *fetched->expires_at - kExpiryMargin);
      good_until_ = std::max(until, now + std::chrono::seconds(1));  // a token about to expire still serves now
      headers_ = auth_headers_(fetched->token);
      seen_.push_back(std::move(fetched->token));
    }
    auto waiting = std::move(waiting_);
    waiting_.clear();
    lock.unlock();
    for (auto& done : waiting) done(error);
    waiting.clear();  // the callbacks' captures go before the fetch counts as ended
    lock.lock();
    fetching_ = false;
    idle_.notify_all();
  }
}

}  // namespace llmguard::internal
