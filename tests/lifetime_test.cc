// Every documented way to create, share and destroy clients and transports,
// with calls in flight, over loopback through the real libcurl transport.
// Run under ASan and TSan (.ci/run): a use-after-free or a race here is a
// failure even when every CHECK passes.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "llmguard/client.h"
#include "mock_server.h"

namespace llmguard {
namespace {

using mock::MockReply;
using mock::MockServer;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::unique_ptr<MockServer> start_mock() {
  auto s = MockServer::start({});
  REQUIRE(s.ok());
  return std::move(*s);
}

ClientOptions options_for(const MockServer& server, std::shared_ptr<Transport> transport = nullptr) {
  ClientOptions o;
  o.targets = {Target{.name = "primary", .base_url = server.base_url(), .model = "m", .api_key = "test-key"}};
  o.retry.max_attempts = 1;
  o.transport = std::move(transport);
  return o;
}

ChatRequest hello() {
  ChatRequest r;
  r.messages = {Message::user("hi")};
  return r;
}

// The outcome of one async call, awaited with a bound so that a call that
// never finishes fails the test instead of hanging it.
struct Outcome {
  std::promise<Result<ChatResponse>> promise;
  std::future<Result<ChatResponse>> future = promise.get_future();
  std::atomic<int> calls{0};

  std::function<void(Result<ChatResponse>)> done() {
    return [this](Result<ChatResponse> r) {
      if (calls.fetch_add(1) == 0) promise.set_value(std::move(r));
    };
  }
  Result<ChatResponse> get() {
    REQUIRE(future.wait_for(seconds(20)) == std::future_status::ready);
    return future.get();
  }
};

TEST_CASE("Destroying a client with an injected curl transport cancels its call in flight") {
  auto server = start_mock();
  auto transport = make_curl_transport();
  REQUIRE(transport.ok());
  server->enqueue("*", MockReply{.hang = true});
  auto client = Client::create(options_for(*server, *transport));
  REQUIRE(client.ok());
  Outcome outcome;
  (*client)->guarded_chat_async(hello(), {}, outcome.done());
  // Wait until the request is at the mock, so the call is truly in flight.
  for (int i = 0; i < 2000 && server->stats().requests == 0; ++i) std::this_thread::sleep_for(milliseconds(1));
  REQUIRE(server->stats().requests == 1);
  client->reset();
  auto r = outcome.get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kCancelled);
  CHECK(outcome.calls == 1);
}

TEST_CASE("The injected transport outlives nothing it needs: dropped first, the calls keep it") {
  auto server = start_mock();
  auto transport = make_curl_transport();
  REQUIRE(transport.ok());
  server->enqueue("*", MockReply{.content = "late", .delay = milliseconds(50)});
  auto client = Client::create(options_for(*server, *transport));
  REQUIRE(client.ok());
  transport->reset();  // the client holds the only reference now
  Outcome outcome;
  (*client)->guarded_chat_async(hello(), {}, outcome.done());
  auto r = outcome.get();
  REQUIRE(r.ok());
  CHECK(r->content == "late");
  client->reset();  // the last reference to the transport, dropped off its loop thread
}

TEST_CASE("Cancelling on one thread while another destroys the client is safe") {
  auto server = start_mock();
  for (int round = 0; round < 20; ++round) {
    server->enqueue("*", MockReply{.hang = true});
    auto transport = make_curl_transport();
    REQUIRE(transport.ok());
    auto client = Client::create(options_for(*server, *transport));
    REQUIRE(client.ok());
    CancellationToken token;
    Outcome outcome;
    (*client)->guarded_chat_async(hello(), CallOptions{.cancellation = token}, outcome.done());
    std::thread canceller([&] { token.cancel(); });
    client->reset();
    canceller.join();
    auto r = outcome.get();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kCancelled);
    CHECK(outcome.calls == 1);
  }
}

TEST_CASE("Cancelling on one thread while another destroys a client that owns its loop is safe") {
  auto server = start_mock();
  for (int round = 0; round < 20; ++round) {
    server->enqueue("*", MockReply{.hang = true});
    auto client = Client::create(options_for(*server));
    REQUIRE(client.ok());
    CancellationToken token;
    Outcome outcome;
    (*client)->guarded_chat_async(hello(), CallOptions{.cancellation = token}, outcome.done());
    std::thread canceller([&] { token.cancel(); });
    client->reset();  // returns once the call's done has run
    CHECK(outcome.calls == 1);
    canceller.join();
    auto r = outcome.get();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kCancelled);
  }
}

TEST_CASE("A client destroyed from its own done callback, on its own loop thread") {
  auto server = start_mock();
  server->enqueue("*", MockReply{.content = "first"});
  server->enqueue("*", MockReply{.hang = true});
  auto created = Client::create(options_for(*server));
  REQUIRE(created.ok());
  std::unique_ptr<Client> client = std::move(*created);
  Outcome other;
  std::promise<std::string> destroyed;
  client->guarded_chat_async(hello(), {}, [&](Result<ChatResponse> r) {
    // The first reply is in: start a second call that hangs, then drop the
    // client from inside this callback.
    client->guarded_chat_async(hello(), {}, other.done());
    client.reset();  // ~Client on the loop thread: no join of itself, no deadlock
    destroyed.set_value(r.ok() ? r->content : std::string(to_string(r.error().category)));
  });
  auto future = destroyed.get_future();
  REQUIRE(future.wait_for(seconds(20)) == std::future_status::ready);
  CHECK(future.get() == "first");
  // The hanging call started in the callback was cancelled by the teardown.
  auto r = other.get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().category == ErrorCategory::kCancelled);
  CHECK(client == nullptr);
}

TEST_CASE("Two clients share one transport; destroying one leaves the other's calls alone") {
  auto server = start_mock();
  auto transport = make_curl_transport();
  REQUIRE(transport.ok());
  auto a = Client::create(options_for(*server, *transport));
  auto b = Client::create(options_for(*server, *transport));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  server->enqueue("*", MockReply{.content = "for b", .delay = milliseconds(30)});
  Outcome outcome;
  (*b)->guarded_chat_async(hello(), {}, outcome.done());
  a->reset();
  transport->reset();
  auto r = outcome.get();
  REQUIRE(r.ok());
  CHECK(r->content == "for b");
  b->reset();
}

TEST_CASE("Many calls in flight when the client goes: each ends exactly once") {
  auto server = start_mock();
  constexpr int kCalls = 32;
  for (int i = 0; i < kCalls; ++i) server->enqueue("*", MockReply{.delay = milliseconds(i), .hang = i % 2 == 0});
  auto client = Client::create(options_for(*server));
  REQUIRE(client.ok());
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < kCalls; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    (*client)->guarded_chat_async(hello(), {}, outcomes.back()->done());
  }
  client->reset();
  for (auto& o : outcomes) {
    CHECK(o->calls == 1);  // ~Client with its own loop returns after every done ran
    auto r = o->get();
    if (!r.ok()) CHECK(r.error().category == ErrorCategory::kCancelled);
  }
}

}  // namespace
}  // namespace llmguard
