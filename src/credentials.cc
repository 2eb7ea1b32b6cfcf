#include "credentials.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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

Result<std::string> run_credential_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
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

  std::string out;
  bool too_long = false, timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{.fd = read_end.fd, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = ready == 0;
      break;
    }
    const ssize_t n = ::read(read_end.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of output (or a read error: judged by the exit status)
    if (out.size() + static_cast<std::size_t>(n) > kMaxOutput) {
      too_long = true;
      break;
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
  if (timed_out || too_long) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return command_error(name, fmt::format("did not finish within {} ms and was killed", timeout.count()));
  if (too_long) return command_error(name, "printed more than 64 KiB; a token was expected");
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

std::optional<CredentialSource> credential_source_of(const Target& target) {
  if (target.credential_source) return target.credential_source;
  if (target.api_key_command.empty()) return std::nullopt;
  return CredentialSource(
      [argv = target.api_key_command, timeout = target.api_key_command_timeout]() -> Result<Credential> {
        auto token = run_credential_command(argv, timeout);
        if (!token.ok()) return std::move(token).error();
        return Credential{.token = std::move(*token)};
      });
}

CredentialCache::CredentialCache(CredentialSource source, std::chrono::milliseconds ttl,
                                 std::function<Headers(std::string_view)> auth_headers, Clock& clock)
    : source_(std::move(source)), ttl_(ttl), auth_headers_(std::move(auth_headers)), clock_(clock) {}

CredentialCache::~CredentialCache() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
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
    lock.unlock();
    Result<Credential> fetched = source_();  // may block: no lock held
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
    lock.lock();
  }
}

}  // namespace llmguard::internal
