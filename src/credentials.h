// Short-lived credentials: a command run without a shell, and the per-target
// cache that fetches tokens off the event loop, keeps them until shortly
// before they expire, and hands them to attempts.
#ifndef LLMGUARD_SRC_CREDENTIALS_H_
#define LLMGUARD_SRC_CREDENTIALS_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmguard/error.h"
#include "llmguard/options.h"
#include "llmguard/runtime.h"

namespace llmguard::internal {

// Set once, when the client that owns a credential source is closed: a
// command still running is killed rather than waited for. poll() sees it
// through fd().
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  void stop();
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  int fd() const { return fd_; }  // readable once stopped; -1 if no eventfd could be had

 private:
  int fd_ = -1;
  std::atomic<bool> stopped_{false};
};

// Runs `argv` (argv[0] looked up in PATH, no shell), stdin from /dev/null
// and stderr this process's (where tools like gcloud explain a failure);
// returns its standard output, surrounding whitespace trimmed. A kAuth error
// when it cannot start, exits non-zero, prints nothing, prints more than
// 64 KiB, or outlives `timeout` (it is then killed); kCancelled when `stop`
// fires first (it is killed too). Messages name argv[0] and what went wrong,
// never the output.
Result<std::string> run_credential_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                           const StopSignal* stop = nullptr);

// Fetches one token; a fetch that blocks should give up once `stop` fires.
using CredentialFetch = std::function<Result<Credential>(const StopSignal& stop)>;

// A target's credential source as one fetch, from Target::credential_source
// (which cannot be interrupted: closing the client waits for it) or
// Target::api_key_command; nullopt when the target has neither.
std::optional<CredentialFetch> credential_source_of(const Target& target);

class CredentialCache {
 public:
  // `auth_headers` turns a token into the headers that carry it (the wire
  // API's). `clock` is the client's (fake in tests).
  CredentialCache(CredentialFetch fetch, std::chrono::milliseconds ttl,
                  std::function<Headers(std::string_view token)> auth_headers, Clock& clock);
  ~CredentialCache();  // stop()s, then waits for a fetch in progress
  CredentialCache(const CredentialCache&) = delete;
  CredentialCache& operator=(const CredentialCache&) = delete;

  // The headers carrying a token that is still good, or nullopt when a
  // fetch is needed first.
  std::optional<Headers> current();
  // Starts a fetch unless one is running; `done` runs on the fetching thread
  // when it ends (with the error when it failed). Callers re-check current().
  void refresh(std::function<void(std::optional<Error>)> done);
  // Forgets the token (after the provider refused it) if it is still
  // `headers`' one, so that the next current() asks for a new one.
  void invalidate(const Headers& headers);
  // Every token handed out so far, for the redactor.
  std::vector<std::string> tokens_seen();
  // The client is closing: a running command is killed, this fetch and any
  // later one fail as kCancelled, and stop() returns once the fetch in
  // progress (a caller's credential_source cannot be interrupted) has ended.
  void stop();

 private:
  void run_fetches();

  CredentialFetch fetch_;
  StopSignal stop_;
  std::chrono::milliseconds ttl_;
  std::function<Headers(std::string_view)> auth_headers_;
  Clock& clock_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::optional<Headers> headers_;
  std::chrono::system_clock::time_point good_until_{};
  std::vector<std::function<void(std::optional<Error>)>> waiting_;
  std::vector<std::string> seen_;
  std::condition_variable idle_;
  bool fetch_requested_ = false;
  bool fetching_ = false;  // a fetch, or its callbacks, is running on worker_
  bool stopping_ = false;
  std::thread worker_;  // started on the first refresh
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_CREDENTIALS_H_
