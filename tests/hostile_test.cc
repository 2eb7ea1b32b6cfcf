// A hostile or broken upstream, met over loopback through the real libcurl
// transport: oversized and endless replies, non-HTTP answers, absurd delays,
// echoed credentials and lying usage. Each case asserts a typed outcome and
// that nothing is lost, leaked or left unbounded.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "llmguard/client.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;

struct Upstream {
  std::unique_ptr<MockServer> server = std::move(MockServer::start({}).value());
  ClientOptions options;

  Upstream() {
    options.retry = RetryPolicy{.max_attempts = 2, .base_delay = milliseconds(1), .max_delay = milliseconds(2)};
    options.targets = {target("primary", "gpt-a"), target("backup", "gpt-b")};
  }
  Target target(std::string name, std::string model, std::string key = "test-key") {
    return Target{.name = std::move(name), .base_url = server->base_url(), .model = std::move(model),
                  .api_key = std::move(key)};
  }
  std::unique_ptr<Client> client() { return std::move(Client::create(options).value()); }
  std::uint64_t requests_for(const std::string& model) const {
    auto stats = server->stats();
    auto it = stats.by_model.find(model);
    return it == stats.by_model.end() ? 0 : it->second;
  }
};

ChatRequest hello() {
  ChatRequest r;
  r.messages.push_back(Message::user("hello"));
  return r;
}

TEST_CASE("An oversized error body on a streaming call is a transient upstream fault: the fallback answers") {
  Upstream up;
  up.options.max_response_bytes = 64 * 1024;
  up.options.retry.max_attempts = 1;
  const std::string huge = R"({"error":{"message":")" + std::string(200 * 1024, 'x') + R"("}})";
  up.server->enqueue("gpt-a", MockReply{.status = 500, .body = huge});
  std::string streamed;
  auto r = up.client()->guarded_chat(hello(), CallOptions{.on_delta = [&](const StreamDelta& d) {
    streamed += d.text;
  }});
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTransient);  // not cancelled: the chain went on
  CHECK(streamed == r->content);
}

TEST_CASE("A retry-after of 10^12 seconds means fall back now, not retry after ordinary backoff") {
  Upstream up;
  up.server->enqueue("gpt-a", MockReply{.status = 429,
                                        .headers = {{"retry-after", "1000000000000"}},
                                        .body = R"({"error":{"message":"slow down","code":"rate_limit_exceeded"}})"});
  auto r = up.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  CHECK(up.requests_for("gpt-a") == 1);
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kRateLimit);
  CHECK(r->attempts[1].waited == milliseconds(0));
}

TEST_CASE("A silent primary costs one attempt timeout: the backup answers, and the next call skips the primary") {
  Upstream up;
  up.options.retry.max_attempts = 3;
  up.options.timeouts.total = milliseconds(300);
  up.server->enqueue("gpt-a", MockReply{.hang = true});
  auto client = up.client();
  auto r = client->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "backup");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTimeout);
  CHECK(r->attempts[0].next == NextStep::kNextTarget);
  CHECK(r->attempts[0].reason == StepReason::kSilentRoute);
  CHECK(up.requests_for("gpt-a") == 1);  // not retried in place
  auto again = client->guarded_chat(hello());
  REQUIRE(again.ok());
  CHECK(again->target == "backup");
  REQUIRE(again->attempts.size() == 2);
  CHECK(again->attempts[0].skipped == ErrorCategory::kCircuitOpen);
  CHECK(up.requests_for("gpt-a") == 1);
}

TEST_CASE("A reply that sent its headers and then stalled is a slow provider: retried in place") {
  Upstream up;
  up.options.timeouts.total = milliseconds(300);
  up.server->enqueue("gpt-a", MockReply{.drip = milliseconds(5000)});  // headers now, the body much later
  auto r = up.client()->guarded_chat(hello());
  REQUIRE(r.ok());
  CHECK(r->target == "primary");
  REQUIRE(r->attempts.size() == 2);
  CHECK(r->attempts[0].category == ErrorCategory::kTimeout);
  CHECK(r->attempts[0].next == NextStep::kRetry);
  CHECK(r->attempts[0].reason == StepReason::kCategoryDefault);
  CHECK(up.requests_for("gpt-a") == 2);
}

}  // namespace
}  // namespace llmguard
