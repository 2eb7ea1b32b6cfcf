// Short-lived credentials: a command run without a shell, and the per-target
// cache that fetches tokens off the event loop, keeps them until shortly
// before they expire, and hands them to attempts.
#ifndef LLMGUARD_SRC_CREDENTIALS_H_
#define LLMGUARD_SRC_CREDENTIALS_H_

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

// Runs `argv` (argv[0] looked up in PATH, no shell), stdin from /dev/null
// and stderr this process's (where tools like gcloud explain a failure);
// returns its standard output, surrounding whitespace trimmed. A kAuth error
// when it cannot start, exits non-zero, prints nothing, prints more than
// 64 KiB, or outlives `timeout` (it is then killed). Messages name argv[0]
// and what went wrong, never the output.
Result<std::string> run_credential_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// A target's credential source as one function, from Target::credential_source
// or Target::api_key_command; nullopt when the target has neither.
std::optional<CredentialSource> credential_source_of(const Target& target);

class CredentialCache {
 public:
  // `auth_headers` turns a token into the headers that carry it (the wire
  // API's). `clock` is the client's (fake in tests).
  CredentialCache(CredentialSource source, std::chrono::milliseconds ttl,
                  std::function<Headers(std::string_view token)> auth_headers, Clock& clock);
  ~CredentialCache();  // waits for a fetch in progress
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

 private:
  void run_fetches();

  CredentialSource source_;
  std::chrono::milliseconds ttl_;
  std::function<Headers(std::string_view)> auth_headers_;
  Clock& clock_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::optional<Headers> headers_;
  std::chrono::system_clock::time_point good_until_{};
  std::vector<std::function<void(std::optional<Error>)>> waiting_;
  std::vector<std::string> seen_;
  bool fetch_requested_ = false;
  bool stopping_ = false;
  std::thread worker_;  // started on the first refresh
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_CREDENTIALS_H_
