#include "mock_server.h"

#include <doctest/doctest.h>

namespace llmguard::mock {
namespace {

using std::chrono::milliseconds;

TEST_CASE("Scripts parse every reply field, expand times, and reject unknown fields") {
  auto script = parse_script(R"([{"model":"a","status":429,"headers":{"retry-after":"2"},"body":"{}",
    "delay_ms":5,"drip_ms":1,"chunk_bytes":8,"times":2},{"hang":true},{"reset_after_bytes":10},
    {"truncate_after_events":3,"content":"hi"}])");
  REQUIRE(script.ok());
  REQUIRE(script->size() == 5);
  CHECK((*script)[0].first == "a");
  CHECK((*script)[1].second.status == 429);
  CHECK((*script)[0].second.headers.at(0).second == "2");
  CHECK((*script)[0].second.delay == milliseconds(5));
  CHECK((*script)[2].first == "*");
  CHECK((*script)[2].second.hang);
  CHECK((*script)[3].second.reset_after_bytes == 10u);
  CHECK((*script)[4].second.truncate_after_events == 3);
  CHECK_FALSE(parse_script(R"([{"stauts":429}])").ok());
  CHECK_FALSE(parse_script(R"({"status":429})").ok());
  CHECK_FALSE(parse_script(R"([{"times":0}])").ok());
}

TEST_CASE("Fault mixes parse names and probabilities and refuse nonsense") {
  auto mix = parse_fault_mix("rate_limit=0.2, overloaded=0.1,hang=0.02,retry_after_ms=50");
  REQUIRE(mix.ok());
  CHECK(mix->rate_limit == doctest::Approx(0.2));
  CHECK(mix->overloaded == doctest::Approx(0.1));
  CHECK(mix->hang == doctest::Approx(0.02));
  CHECK(mix->retry_after == milliseconds(50));
  CHECK_FALSE(parse_fault_mix("rate_limit=2").ok());
  CHECK_FALSE(parse_fault_mix("gremlins=0.1").ok());
  CHECK_FALSE(parse_fault_mix("rate_limit").ok());
  CHECK_FALSE(parse_fault_mix("rate_limit=0.7,overloaded=0.7").ok());
}

TEST_CASE("Scripted replies go to their model's queue before the shared one") {
  auto server = std::move(MockServer::start({}).value());
  server->enqueue("*", MockReply{.status = 500});
  server->enqueue("b", MockReply{.status = 404});
  CHECK(server->port() > 0);
  CHECK(server->base_url().ends_with("/v1"));
  CHECK(server->stats().requests == 0);
  server->reset();
  CHECK(server->stats().requests == 0);
}

}  // namespace
}  // namespace llmguard::mock
