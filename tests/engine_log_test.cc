// The client's log lines: logfmt quoting, the level from LLMGUARD_LOG, and
// what a call writes over loopback to the mock, credentials masked.
#include "engine_log.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "llmguard/client.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

TEST_CASE("Log values are quoted when they need it; control characters cannot break a line") {
  internal::LogLine line(7);
  line.field("target", "primary").field("message", "Rate limit \"reached\"\n\x1b[2J").field("empty", "");
  line.field("n", std::int64_t{42}).field("cost_usd", 0.00125);
  CHECK(line.text() ==
        R"(llmguard call=7 target=primary message="Rate limit \"reached\"\n\x1b[2J" empty="" n=42 cost_usd=0.00125)");
  CHECK(line.text().find('\n') == std::string::npos);
  CHECK(line.text().find('\x1b') == std::string::npos);
}

TEST_CASE("LLMGUARD_LOG: info and debug in any case; anything else is off") {
  CHECK(internal::log_level_from("info") == LogLevel::kInfo);
  CHECK(internal::log_level_from(" DEBUG ") == LogLevel::kDebug);
  CHECK(internal::log_level_from("verbose") == LogLevel::kOff);
  CHECK(internal::log_level_from("") == LogLevel::kOff);
  CHECK(internal::log_level_from(nullptr) == LogLevel::kOff);
}

struct LoggedChain {
  std::unique_ptr<MockServer> server = std::move(MockServer::start({}).value());
  std::vector<std::string> lines;
  ClientOptions options;

  LoggedChain() {
    options.retry = RetryPolicy{.max_attempts = 2, .base_delay = milliseconds(1), .max_delay = milliseconds(2)};
    options.targets = {
        Target{
            .name = "primary", .base_url = server->base_url(), .model = "gpt-a", .api_key = "sk-log-test-0123456789"},
        Target{
            .name = "backup", .base_url = server->base_url(), .model = "gpt-b", .api_key = "sk-log-test-0123456789"}};
    options.log_sink = [this](std::string_view line) { lines.emplace_back(line); };
  }
  std::unique_ptr<Client> client() { return std::move(Client::create(options).value()); }
  static ChatRequest hello() {
    ChatRequest r;
    r.messages = {Message::user("hello")};
    r.caller_tag = "agent-7";
    return r;
  }
};

TEST_CASE("At info a call logs a line per attempt with its outcome and next step, then its own line") {
  LoggedChain chain;
  chain.options.log_level = LogLevel::kInfo;
  chain.server->enqueue("gpt-a", MockReply{.status = 500});
  chain.server->enqueue("gpt-a", MockReply{.status = 401});
  auto r = chain.client()->guarded_chat(LoggedChain::hello());
  REQUIRE(r.ok());
  REQUIRE(chain.lines.size() == 4);
  CHECK(chain.lines[0].starts_with("llmguard call="));
  CHECK(chain.lines[0].find(" attempt=1 target=primary model=gpt-a status=500 category=transient") !=
        std::string::npos);
  CHECK(chain.lines[0].find(" next=retry") != std::string::npos);
  CHECK(chain.lines[1].find(" attempt=2 target=primary model=gpt-a status=401 category=auth") != std::string::npos);
  CHECK(chain.lines[1].find(" next=next_target") != std::string::npos);
  CHECK(chain.lines[2].find(" attempt=3 target=backup model=gpt-b status=200 category=ok") != std::string::npos);
  CHECK(chain.lines[3].find(" outcome=ok target=backup") != std::string::npos);
  CHECK(chain.lines[3].find(" attempts=3 ") != std::string::npos);
  for (const std::string& line : chain.lines) {
    CAPTURE(line);
    CHECK(line.find("took_ms=") != std::string::npos);
    CHECK(line.ends_with(" tag=agent-7"));
  }
}

TEST_CASE("A failed call's line carries its error, the echoed key masked; debug adds the engine's events") {
  LoggedChain chain;
  chain.options.log_level = LogLevel::kDebug;
  chain.options.targets.resize(1);
  chain.server->enqueue("gpt-a", MockReply{.status = 401, .echo_key = true});
  auto r = chain.client()->guarded_chat(LoggedChain::hello());
  REQUIRE_FALSE(r.ok());
  REQUIRE_FALSE(chain.lines.empty());
  const std::string& last = chain.lines.back();
  CHECK(last.find(" outcome=failed category=auth target=primary status=401") != std::string::npos);
  CHECK(last.find(" message=") != std::string::npos);
  bool saw_event = false;
  for (const std::string& line : chain.lines) {
    CAPTURE(line);
    CHECK(line.find("sk-log-test-0123456789") == std::string::npos);
    CHECK(line.find("SK-LOG-TEST-0123456789") == std::string::npos);
    saw_event = saw_event || line.find(" event=attempt_failed attempt=1 target=primary category=auth status=401") !=
                                 std::string::npos;
  }
  CHECK(saw_event);
}

TEST_CASE("Without log_level the client follows LLMGUARD_LOG, read at create(); unset, it logs nothing") {
  LoggedChain chain;
  ::unsetenv("LLMGUARD_LOG");
  REQUIRE(chain.client()->guarded_chat(LoggedChain::hello()).ok());
  CHECK(chain.lines.empty());
  ::setenv("LLMGUARD_LOG", "info", 1);
  auto client = chain.client();
  ::unsetenv("LLMGUARD_LOG");
  REQUIRE(client->guarded_chat(LoggedChain::hello()).ok());
  REQUIRE(chain.lines.size() == 2);  // the attempt and the call
  CHECK(chain.lines[1].find(" outcome=ok") != std::string::npos);
}

}  // namespace
}  // namespace llmguard

namespace llmguard {
namespace {

TEST_CASE("Events number their attempts; a retry says the status and reason of the attempt it follows") {
  LoggedChain chain;
  chain.options.log_level = LogLevel::kOff;
  std::vector<Event> events;
  chain.options.on_event = [&](const Event& e) { events.push_back(e); };
  chain.server->enqueue("gpt-a", MockReply{.status = 500});
  REQUIRE(chain.client()->guarded_chat(LoggedChain::hello()).ok());
  CHECK(chain.lines.empty());
  std::vector<int> started;
  const Event* retry = nullptr;
  for (const Event& e : events) {
    if (e.kind == Event::Kind::kAttemptStarted) started.push_back(e.attempt);
    if (e.kind == Event::Kind::kRetryScheduled) retry = &e;
  }
  CHECK(started == std::vector<int>{1, 2});
  REQUIRE(retry != nullptr);
  CHECK(retry->attempt == 1);
  CHECK(retry->http_status == 500);
  CHECK(retry->category == ErrorCategory::kTransient);
  CHECK(retry->reason.has_value());
}

}  // namespace
}  // namespace llmguard
