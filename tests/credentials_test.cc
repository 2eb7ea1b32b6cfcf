// Short-lived credentials: a command run without a shell, a callback, the
// cache, and a refused token replaced once, end to end through the real
// transport to the mock.
#include "credentials.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "llmguard/client.h"
#include "llmguard/config.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using internal::run_credential_command;
using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

TEST_CASE("A credential command's stdout, trimmed, is the token") {
  auto token = run_credential_command({"printf", "  ya29.token-0123456789\\n"}, milliseconds(5000));
  REQUIRE(token.ok());
  CHECK(*token == "ya29.token-0123456789");
}

TEST_CASE("A credential command that fails, hangs, prints nothing or too much is a typed auth error") {
  auto failed = run_credential_command({"sh", "-c", "echo secret-ish-output; exit 3"}, milliseconds(5000));
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().category == ErrorCategory::kAuth);
  CHECK(failed.error().message.find("status 3") != std::string::npos);
  CHECK(failed.error().message.find("secret-ish-output") == std::string::npos);  // output never shown

  auto hung = run_credential_command({"sleep", "30"}, milliseconds(100));
  REQUIRE_FALSE(hung.ok());
  CHECK(hung.error().category == ErrorCategory::kAuth);
  CHECK(hung.error().message.find("within 100 ms") != std::string::npos);

  // Its stdout closed, a command that lingers is bounded by the timeout all the same.
  auto lingering =
      run_credential_command({"sh", "-c", "printf tok-abcdefgh; exec >&-; exec sleep 30"}, milliseconds(200));
  REQUIRE_FALSE(lingering.ok());
  CHECK(lingering.error().message.find("within 200 ms") != std::string::npos);

  internal::StopSignal stop;
  stop.stop();
  auto stopped = run_credential_command({"sleep", "30"}, milliseconds(60'000), &stop);
  REQUIRE_FALSE(stopped.ok());
  CHECK(stopped.error().category == ErrorCategory::kCancelled);

  auto missing = run_credential_command({"llmguard-no-such-command"}, milliseconds(1000));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("could not start") != std::string::npos);

  auto silent = run_credential_command({"true"}, milliseconds(5000));
  REQUIRE_FALSE(silent.ok());
  CHECK(silent.error().message.find("no token") != std::string::npos);

  auto two_lines = run_credential_command({"printf", "a-token\\nanother"}, milliseconds(5000));
  REQUIRE_FALSE(two_lines.ok());
  CHECK(two_lines.error().message.find("more than one line") != std::string::npos);

  auto empty = run_credential_command({}, milliseconds(1000));
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().category == ErrorCategory::kBadRequest);
}

std::unique_ptr<MockServer> start_mock(mock::MockOptions o = {}) {
  auto s = MockServer::start(std::move(o));
  REQUIRE(s.ok());
  return std::move(*s);
}

std::unique_ptr<Client> make_client(std::vector<Target> targets, std::function<void(const Event&)> on_event = nullptr) {
  ClientOptions o;
  o.targets = std::move(targets);
  o.on_event = std::move(on_event);
  o.retry.base_delay = milliseconds(1);
  o.retry.max_delay = milliseconds(2);
  auto c = Client::create(std::move(o));
  REQUIRE(c.ok());
  return std::move(*c);
}

ChatRequest hello() {
  ChatRequest r;
  r.messages = {Message::user("hello")};
  return r;
}

// A source that hands out the given tokens in turn (the last one again and again).
struct CountingSource {
  std::vector<std::string> tokens;
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  CredentialSource source() const {
    return [tokens = tokens, calls = calls]() -> Result<Credential> {
      const int n = calls->fetch_add(1);
      return Credential{.token = tokens[std::min<std::size_t>(n, tokens.size() - 1)]};
    };
  }
};

TEST_CASE("A token from a credential source is fetched once and reused while it is good") {
  auto server = start_mock({.require_key = "ya29.good-token-0123456789"});
  CountingSource counting{.tokens = {"ya29.good-token-0123456789"}};
  auto client = make_client({{.name = "vertex",
                              .provider = Provider::kVertex,
                              .base_url = server->base_url(),
                              .model = "gemini-2.5-pro",
                              .project = "acme-ml",
                              .location = "us-central1",
                              .credential_source = counting.source()}});
  for (int i = 0; i < 3; ++i) {
    auto r = client->guarded_chat(hello());
    REQUIRE(r.ok());
  }
  CHECK(*counting.calls == 1);
  CHECK(*find_header(server->recent_requests().at(2).headers, "authorization") == "Bearer ya29.good-token-0123456789");
}

TEST_CASE("A refused token is replaced once and the same target tried again, before any fallback") {
  auto server = start_mock({.require_key = "sk-fresh-token-0123456789"});
  auto backup = start_mock();
  CountingSource counting{.tokens = {"sk-stale-token-0123456789", "sk-fresh-token-0123456789"}};
  auto client = make_client(
      {{.name = "gateway", .base_url = server->base_url(), .model = "gpt-a", .credential_source = counting.source()},
       {.name = "backup", .base_url = backup->base_url(), .model = "gpt-b", .api_key = "k"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "gateway");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[0].next == NextStep::kRetry);
  CHECK(r->attempts[0].reason == StepReason::kCredentialRefreshed);
  CHECK(*counting.calls == 2);
  CHECK(backup->stats().requests == 0);
}

TEST_CASE("A token refused again after its refresh fails the target over, with the token masked") {
  auto server = start_mock();
  auto backup = start_mock();
  server->enqueue("*", MockReply{.status = 401, .echo_key = true});
  server->enqueue("*", MockReply{.status = 401, .echo_key = true});
  CountingSource counting{.tokens = {"sk-rotating-token-aaaaaaaaaa", "sk-rotating-token-bbbbbbbbbb"}};
  std::vector<std::string> messages;  // written on the loop thread, read after the call returned
  auto client = make_client(
      {{.name = "gateway", .base_url = server->base_url(), .model = "gpt-a", .credential_source = counting.source()},
       {.name = "backup", .base_url = backup->base_url(), .model = "gpt-b", .api_key = "k"}},
      [&messages](const Event& e) { messages.emplace_back(e.message); });
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 3);
  CHECK(r->attempts[1].category == ErrorCategory::kAuth);
  CHECK(r->attempts[1].next == NextStep::kNextTarget);
  CHECK_FALSE(messages.empty());
  for (const std::string& m : messages) {
    CHECK(m.find("sk-rotating-token") == std::string::npos);
    CHECK(m.find("SK-ROTATING-TOKEN") == std::string::npos);
  }
}

TEST_CASE("A credential command that fails is the target's failed attempt, and the chain moves on") {
  auto server = start_mock();
  auto backup = start_mock();
  auto client = make_client(
      {{.name = "gateway", .base_url = server->base_url(), .model = "gpt-a", .api_key_command = {"sh", "-c", "exit 1"}},
       {.name = "backup", .base_url = backup->base_url(), .model = "gpt-b", .api_key = "k"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[0].http_status == 0);
  CHECK(server->stats().requests == 0);  // nothing was sent without a token
}

TEST_CASE("A credential command that hangs is killed at its timeout; the call moves on to the backup") {
  auto server = start_mock();
  auto backup = start_mock();
  auto client = make_client({{.name = "gateway",
                              .base_url = server->base_url(),
                              .model = "gpt-a",
                              .api_key_command = {"sleep", "30"},
                              .api_key_command_timeout = milliseconds(200)},
                             {.name = "backup", .base_url = backup->base_url(), .model = "gpt-b", .api_key = "k"}});
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kAuth);
  CHECK(r->attempts[0].duration < milliseconds(20'000));  // killed at its timeout, not after its 30 s
  CHECK(server->stats().requests == 0);
}

TEST_CASE("A call whose deadline comes first does not wait for a hanging credential command") {
  auto server = start_mock();
  auto client = make_client({{.name = "gateway",
                              .base_url = server->base_url(),
                              .model = "gpt-a",
                              .api_key_command = {"sleep", "30"},
                              .api_key_command_timeout = milliseconds(60'000)}});
  auto r = client->guarded_chat(hello(), CallOptions{.deadline = milliseconds(200)});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kTimeout);
  CHECK(server->stats().requests == 0);
}

TEST_CASE("Closing the client kills a credential command still running: no process outlives it") {
  auto server = start_mock();
  const std::string pid_file = fmt::format("/tmp/llmguard-credentials-test-{}.pid", ::getpid());
  std::remove(pid_file.c_str());
  auto client = make_client({{.name = "gateway",
                              .base_url = server->base_url(),
                              .model = "gpt-a",
                              .api_key_command = {"sh", "-c", "echo $$ > " + pid_file + "; exec sleep 30"},
                              .api_key_command_timeout = milliseconds(60'000)}});
  std::promise<Result<ChatResponse>> done;
  auto outcome = done.get_future();
  client->guarded_chat_async(hello(), {}, [&done](Result<ChatResponse> r) { done.set_value(std::move(r)); });
  // Wait (bounded) until the command runs, so that closing meets it mid-way.
  pid_t pid = 0;
  for (int i = 0; i < 5000 && pid == 0; ++i) {
    std::ifstream in(pid_file);
    if (!(in >> pid)) {
      pid = 0;
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  REQUIRE(pid > 0);
  REQUIRE(::kill(pid, 0) == 0);
  client.reset();
  REQUIRE(outcome.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  auto r = outcome.get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kCancelled);
  CHECK(::kill(pid, 0) == -1);  // killed and reaped before the client's destructor returned
  CHECK(errno == ESRCH);
  CHECK(server->stats().requests == 0);
  std::remove(pid_file.c_str());
}

TEST_CASE("Azure: a resource key goes in api-key, a credential source's Entra ID token as a bearer token") {
  auto server = start_mock();
  CountingSource entra{.tokens = {"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-token"}};
  auto keyed = make_client({{.name = "keyed",
                             .provider = Provider::kAzure,
                             .base_url = server->root_url(),
                             .model = "dep-a",
                             .api_key = "0123456789abcdef0123456789abcdef"}});
  REQUIRE(keyed->guarded_chat(hello()).ok());
  auto entra_client = make_client({{.name = "entra",
                                    .provider = Provider::kAzure,
                                    .base_url = server->root_url(),
                                    .model = "dep-b",
                                    .credential_source = entra.source()}});
  REQUIRE(entra_client->guarded_chat(hello()).ok());
  const auto requests = server->recent_requests();
  REQUIRE(requests.size() == 2);
  CHECK(*find_header(requests[0].headers, "api-key") == "0123456789abcdef0123456789abcdef");
  CHECK(find_header(requests[0].headers, "authorization") == nullptr);
  CHECK(*find_header(requests[1].headers, "authorization") ==
        "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-token");
  CHECK(find_header(requests[1].headers, "api-key") == nullptr);
}

TEST_CASE("A credential command from a config file, as a line or as arguments") {
  auto o = parse_client_options(R"({"targets": [
    {"name": "a", "model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_command": "printf tok-abcdefgh",
     "api_key_command_timeout_ms": 3000, "credential_ttl_ms": 60000},
    {"name": "b", "model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_command": ["printf", "tok b"]}]})");
  REQUIRE(o.ok());
  CHECK(o->targets[0].api_key_command == std::vector<std::string>{"printf", "tok-abcdefgh"});
  CHECK(o->targets[0].api_key_command_timeout == milliseconds(3000));
  CHECK(o->targets[0].credential_ttl == milliseconds(60000));
  CHECK(o->targets[1].api_key_command == std::vector<std::string>{"printf", "tok b"});
  auto bad = parse_client_options(R"({"targets": [{"name": "a", "model": "m", "api_key_command": [1]}]})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("api_key_command") != std::string::npos);
}

TEST_CASE("A key and a credential source on one target is refused at create()") {
  ClientOptions o;
  o.targets = {{.name = "a",
                .base_url = "http://127.0.0.1:9/v1",
                .model = "m",
                .api_key = "sk-abcdef0123456789",
                .api_key_command = {"printf", "x"}}};
  auto c = Client::create(std::move(o));
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().category == ErrorCategory::kBadRequest);
  CHECK(c.error().message.find("not both") != std::string::npos);
}

}  // namespace
}  // namespace llmguard
