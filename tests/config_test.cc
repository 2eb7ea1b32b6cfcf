#include "llmguard/config.h"

#include <doctest/doctest.h>

#include <cstdlib>

#include "llmguard/client.h"

namespace llmguard {
namespace {

using std::chrono::milliseconds;

TEST_CASE("A full config file maps onto ClientOptions") {
  auto o = parse_client_options(R"({
    "targets": [
      {"name": "primary", "provider": "openai", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini",
       "api_key_env": "MY_KEY", "context_window": 128000, "headers": {"x-team": "agents"},
       "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6, "cached_input_per_mtok": 0.075}},
      {"name": "az", "provider": "azure", "base_url": "https://r.openai.azure.com", "model": "dep", "api_key": "k",
       "api_version": "2024-10-21"},
      {"name": "local", "provider": "vllm", "base_url": "http://127.0.0.1:8000/v1", "model": "llama"}],
    "retry": {"max_attempts": 4, "base_delay_ms": 250, "max_delay_ms": 8000, "jitter": "decorrelated",
              "max_retry_after_ms": 20000},
    "timeouts": {"connect_ms": 2000, "total_ms": 60000, "ttft_ms": 15000, "idle_ms": 30000},
    "deadline_ms": 90000})");
  REQUIRE(o.ok());
  REQUIRE(o->targets.size() == 3);
  CHECK(o->targets[0].api_key_env == "MY_KEY");
  CHECK(o->targets[0].context_window == 128000);
  CHECK(o->targets[0].headers.at(0).first == "x-team");
  CHECK(o->targets[0].price->cached_input_per_mtok == doctest::Approx(0.075));
  CHECK(o->targets[1].provider == Provider::kAzure);
  CHECK(o->targets[1].api_version == "2024-10-21");
  CHECK(o->targets[2].provider == Provider::kOpenAI);
  CHECK(o->retry.max_attempts == 4);
  CHECK(o->retry.jitter == Jitter::kDecorrelated);
  CHECK(o->retry.max_retry_after == milliseconds(20000));
  CHECK(o->timeouts.ttft == milliseconds(15000));
  CHECK(o->deadline == milliseconds(90000));
}

TEST_CASE("Named services fill in their API root and their own key variable") {
  auto o = parse_client_options(R"({"targets": [
    {"name": "g", "provider": "gemini", "model": "gemini-2.5-flash"},
    {"name": "local", "provider": "ollama", "model": "llama3"},
    {"name": "own-url", "provider": "groq", "model": "m", "base_url": "http://127.0.0.1:9/openai/v1"},
    {"name": "own-key", "provider": "openrouter", "model": "m", "api_key_env": "MY_OR_KEY"},
    {"name": "compat", "provider": "openai-compatible", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
    {"name": "plain", "provider": "openai", "model": "gpt-4o-mini"}]})");
  REQUIRE(o.ok());
  const auto& t = o->targets;
  // Gemini's own API, with its defaults (GEMINI_API_KEY, then GOOGLE_API_KEY) applied at create().
  CHECK(t[0].provider == Provider::kGemini);
  CHECK(t[0].base_url.empty());
  CHECK(t[0].api_key_env.empty());
  CHECK(t[1].base_url == "http://localhost:11434/v1");
  CHECK(t[1].api_key_env == "OLLAMA_API_KEY");  // never OPENAI_API_KEY for a local server
  CHECK(t[2].base_url == "http://127.0.0.1:9/openai/v1");
  CHECK(t[2].api_key_env == "GROQ_API_KEY");
  CHECK(t[3].api_key_env == "MY_OR_KEY");
  CHECK(t[4].api_key_env.empty());
  CHECK(t[5].base_url.empty());  // OPENAI_BASE_URL / OPENAI_API_BASE still apply
  CHECK(provider_preset("anthropic")->provider == Provider::kAnthropic);
  CHECK_FALSE(provider_preset("skynet").has_value());
}

TEST_CASE("Vertex targets carry their project and location") {
  auto o = parse_client_options(R"({"targets": [
    {"name": "v", "provider": "vertex", "model": "gemini-2.5-pro", "project": "acme-ml", "location": "europe-west4"},
    {"name": "shim", "provider": "openai", "model": "gemini-2.5-flash",
     "base_url": "https://generativelanguage.googleapis.com/v1beta/openai", "api_key_env": "GEMINI_API_KEY"}]})");
  REQUIRE(o.ok());
  CHECK(o->targets[0].provider == Provider::kVertex);
  CHECK(o->targets[0].project == "acme-ml");
  CHECK(o->targets[0].location == "europe-west4");
  CHECK(o->targets[1].provider == Provider::kOpenAI);  // Gemini's OpenAI-compatible endpoint stays reachable
}

TEST_CASE("Client-side limits per target") {
  auto o = parse_client_options(R"({"targets": [{"name": "a", "model": "m", "base_url": "http://127.0.0.1:1/v1",
    "limits": {"max_concurrency": 8, "requests_per_minute": 500, "tokens_per_minute": 200000}}]})");
  REQUIRE(o.ok());
  const Target::Limits& l = o->targets[0].limits;
  CHECK(l.max_concurrency == 8);
  CHECK(l.requests_per_minute == 500.0);
  CHECK(l.tokens_per_minute == 200000);
}

TEST_CASE("Per-category rules come from retry.rules") {
  auto o = parse_client_options(R"({"targets": [{"name": "a", "model": "m", "base_url": "http://127.0.0.1:1/v1"}],
    "retry": {"rules": [{"category": "content_filter", "action": "next_target"},
                        {"category": "rate_limit", "action": "retry", "max_attempts": 5}]}})");
  REQUIRE(o.ok());
  REQUIRE(o->retry.rules.size() == 2);
  CHECK(o->retry.rules[0].category == ErrorCategory::kContentFilter);
  CHECK(o->retry.rules[0].action == OnFailure::kNextTarget);
  CHECK(o->retry.rules[1].action == OnFailure::kRetry);
  CHECK(o->retry.rules[1].max_attempts == 5);
}

TEST_CASE("Classifier rules come from classifier_rules") {
  auto o = parse_client_options(R"({"classifier_rules": [
    {"id": "gw-quota", "category": "quota_exhausted", "status": 429, "words": ["allowance", "spent"],
     "json_pointer": "/fault/text", "delay_field": "/fault/wait"},
    {"id": "gw-auth", "category": "auth", "header": "x-gateway-error", "words": ["badkey"]}]})");
  REQUIRE(o.ok());
  REQUIRE(o->classifier_rules.size() == 2);
  const ClassifierRule& quota = o->classifier_rules[0];
  CHECK(quota.id == "gw-quota");
  CHECK(quota.category == ErrorCategory::kQuotaExhausted);
  CHECK(quota.status == 429);
  CHECK(quota.words == std::vector<std::string>{"allowance", "spent"});
  CHECK(quota.json_pointer == "/fault/text");
  CHECK(quota.delay_field == "/fault/wait");
  CHECK(o->classifier_rules[1].header == "x-gateway-error");
  CHECK_FALSE(o->classifier_rules[1].status.has_value());
}

TEST_CASE("Config mistakes are errors that name the key") {
  struct Case {
    const char* json;
    const char* mentions;
  };
  const Case cases[] = {
      {R"({"targets": [{"name": "a", "modle": "x"}]})", "targets[0].modle"},
      {R"({"targets": [{"name": "a", "provider": "skynet", "model": "m"}]})", "skynet"},
      {R"({"retry": {"jitter": "lots"}})", "retry.jitter"},
      {R"({"retry": {"max_attempts": 0}})", "retry.max_attempts"},
      {R"({"retry": {"rules": [{"category": "spam", "action": "fail"}]}})", "retry.rules[0].category"},
      {R"({"retry": {"rules": [{"category": "auth", "action": "panic"}]}})", "retry.rules[0].action"},
      {R"({"retry": {"rules": [{"category": "auth"}]}})", "needs a category and an action"},
      {R"({"timeouts": {"total_ms": -5}})", "timeouts.total_ms"},
      {R"({"classifier_rules": {"id": "x"}})", "classifier_rules must be an array"},
      {R"({"classifier_rules": [{"id": "x", "category": "nonsense", "status": 429}]})", "classifier_rules[0].category"},
      {R"({"classifier_rules": [{"id": "x", "category": "auth", "status": 999}]})", "classifier_rules[0].status"},
      {R"({"classifier_rules": [{"id": "x", "category": "auth", "words": "token"}]})", "classifier_rules[0].words"},
      {R"({"classifier_rules": [{"category": "auth", "status": 401}]})", "needs an id and a category"},
      {R"({"classifier_rules": [{"id": "x", "category": "auth", "regex": "."}]})", "classifier_rules[0].regex"},
      {R"({"targets": [{"context_window": "big"}]})", "context_window"},
      {R"({"deadline": 5})", "deadline"},
      {R"({"verify_tls": "yes"})", "verify_tls"},
      {R"({"targets": [{"model": "m", "limits": {"requests_per_minute": 0}}]})",
       "targets[0].limits.requests_per_minute"},
      {R"({"targets": [{"model": "m", "limits": {"rpm": 5}}]})", "targets[0].limits.rpm"},
      {R"({"budget": {"usd": 1, "period": "fortnight"}})", "budget.period"},
      {R"({"budgets": [{"dollars": 1}]})", "budgets[0].dollars"},
      {R"([1, 2])", "JSON object"},
      {R"({"targets": )", "not valid JSON"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json);
    auto o = parse_client_options(c.json);
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().category == ErrorCategory::kBadRequest);
    CHECK(o.error().message.find(c.mentions) != std::string::npos);
  }
}

TEST_CASE("Numbers out of range are errors that name the field and its range, never overflowed durations") {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"timeouts": {"idle_ms": 9.2e12}})", "timeouts.idle_ms must be between 1 and 86400000 (24 h)"},
      {R"({"timeouts": {"idle_ms": 9200000000000}})", "timeouts.idle_ms must be between 1 and 86400000 (24 h)"},
      {R"({"timeouts": {"connect_ms": 18446744073709551615}})",
       "timeouts.connect_ms must be between 1 and 86400000 (24 h)"},
      {R"({"timeouts": {"total_ms": 0}})", "timeouts.total_ms must be between 1 and 86400000 (24 h)"},
      {R"({"timeouts": {"ttft_ms": -1}})", "timeouts.ttft_ms must be between 1 and 86400000 (24 h)"},
      {R"({"deadline_ms": 604800001})", "deadline_ms must be between 1 and 604800000 (7 days)"},
      {R"({"retry": {"base_delay_ms": 1e300}})", "retry.base_delay_ms must be between 0 and 86400000 (24 h)"},
      {R"({"retry": {"max_delay_ms": -9223372036854775808}})", "retry.max_delay_ms must be between 0 and 86400000"},
      {R"({"retry": {"max_retry_after_ms": 86400001}})", "retry.max_retry_after_ms must be between 0 and 86400000"},
      {R"({"retry": {"max_attempts": 101}})", "retry.max_attempts must be between 1 and 100"},
      {R"({"retry": {"max_attempts": 3.5}})", "retry.max_attempts must be a whole number"},
      {R"({"retry": {"max_attempts": "3"}})", "retry.max_attempts must be a number"},
      {R"({"retry": {"max_attempts": true}})", "retry.max_attempts must be a number"},
      {R"({"retry": {"rules": [{"category": "auth", "action": "retry", "max_attempts": 1e10}]}})",
       "retry.rules[0].max_attempts must be between 1 and 100"},
      {R"({"targets": [{"model": "m", "context_window": 1e10}]})",
       "targets[0].context_window must be between 1 and 1000000000 tokens"},
      {R"({"targets": [{"model": "m", "context_window": 0}]})", "targets[0].context_window must be between 1"},
      {R"({"targets": [{"model": "m", "price": {"input_per_mtok": 1e7}}]})",
       "targets[0].price.input_per_mtok must be between 0 and 1000000 USD per million tokens"},
      {R"({"targets": [{"model": "m", "price": {"output_per_mtok": -0.5}}]})",
       "targets[0].price.output_per_mtok must be between 0 and 1000000"},
      {R"({"targets": [{"model": "m", "price": {"cached_input_per_mtok": "free"}}]})",
       "targets[0].price.cached_input_per_mtok must be a number"},
      {R"({"targets": [{"model": "m", "limits": {"max_concurrency": 3000000000}}]})",
       "targets[0].limits.max_concurrency must be between 1 and 1000000"},
      {R"({"targets": [{"model": "m", "limits": {"max_concurrency": 2.5}}]})",
       "targets[0].limits.max_concurrency must be a whole number"},
      {R"({"targets": [{"model": "m", "limits": {"requests_per_minute": 1e-300}}]})",
       "targets[0].limits.requests_per_minute must be between 0.01 and 10000000"},
      {R"({"targets": [{"model": "m", "limits": {"tokens_per_minute": 1e13}}]})",
       "targets[0].limits.tokens_per_minute must be between 1 and 1000000000000"},
      {R"({"budget": {"usd": -1}})", "budget.usd must be between 0 and 1000000000 USD"},
      {R"({"budget": {"usd": 1e10}})", "budget.usd must be between 0 and 1000000000 USD"},
      {R"({"budgets": [{"tokens": -5}]})", "budgets[0].tokens must be between 0 and 1000000000000000"},
      {R"({"budgets": [{"tokens": 12.5}]})", "budgets[0].tokens must be a whole number"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json);
    auto o = parse_client_options(c.json);
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().category == ErrorCategory::kBadRequest);
    CHECK(o.error().message.find(c.message) != std::string::npos);
    CAPTURE(o.error().message);
  }
}

TEST_CASE("Whole numbers written as 3.0 are accepted, and the bounds themselves are in range") {
  auto o = parse_client_options(R"({"retry": {"max_attempts": 3.0, "base_delay_ms": 0, "max_delay_ms": 86400000},
    "timeouts": {"idle_ms": 8.64e7, "connect_ms": 1}, "deadline_ms": 604800000,
    "targets": [{"model": "m", "context_window": 1e9, "price": {"input_per_mtok": 1e6, "output_per_mtok": 0},
                 "limits": {"max_concurrency": 1e6, "requests_per_minute": 0.01, "tokens_per_minute": 1e12}}],
    "budgets": [{"usd": 0}, {"tokens": 1e15}]})");
  REQUIRE(o.ok());
  CHECK(o->retry.max_attempts == 3);
  CHECK(o->retry.max_delay == milliseconds(86'400'000));
  CHECK(o->timeouts.idle == milliseconds(86'400'000));
  CHECK(o->deadline == milliseconds(604'800'000));
  CHECK(o->targets[0].context_window == 1'000'000'000);
  CHECK(o->targets[0].limits.max_concurrency == 1'000'000);
  CHECK(o->targets[0].limits.tokens_per_minute == 1'000'000'000'000);
  CHECK(*o->budgets[0].usd == 0.0);
  CHECK(*o->budgets[1].tokens == 1'000'000'000'000'000);
}

TEST_CASE("Budgets: the DESIGN.md form and the list form") {
  auto one = parse_client_options(R"({"budget": {"usd": 2.5}})");
  REQUIRE(one.ok());
  REQUIRE(one->budgets.size() == 1);
  CHECK(*one->budgets[0].usd == doctest::Approx(2.5));
  CHECK(one->budgets[0].period == Budget::Period::kTotal);
  auto many = parse_client_options(
      R"({"budgets": [{"usd": 10, "period": "month"}, {"tokens": 5000, "period": "hour", "caller_tag": "bot"}]})");
  REQUIRE(many.ok());
  REQUIRE(many->budgets.size() == 2);
  CHECK(many->budgets[0].period == Budget::Period::kMonth);
  CHECK(*many->budgets[1].tokens == 5000);
  CHECK(many->budgets[1].caller_tag == "bot");
}

TEST_CASE("shared_state: the DESIGN.md form; mistakes named; a bad URL refused at create() without its password") {
  auto o = parse_client_options(R"({"targets": [{"name": "a", "model": "gpt-4o-mini", "api_key": "k"}],
    "shared_state": {"redis_url": "unix:///run/redis.sock", "namespace": "fleet-a", "on_unavailable": "fail",
                     "lease_ttl_ms": 5000, "command_timeout_ms": 100, "password_env": "REDIS_PASSWORD"}})");
  REQUIRE(o.ok());
  REQUIRE(o->shared_state);
  CHECK(o->shared_state->redis_url == "unix:///run/redis.sock");
  CHECK(o->shared_state->name_space == "fleet-a");
  CHECK(o->shared_state->on_unavailable == SharedState::OnUnavailable::kFail);
  CHECK(o->shared_state->lease_ttl == milliseconds(5000));
  CHECK(o->shared_state->command_timeout == milliseconds(100));
  CHECK(o->shared_state->password_env == "REDIS_PASSWORD");

  auto defaults = parse_client_options(R"({"shared_state": {"redis_url": "redis://127.0.0.1:6379/0"}})");
  REQUIRE(defaults.ok());
  CHECK(defaults->shared_state->on_unavailable == SharedState::OnUnavailable::kLocal);
  CHECK(defaults->shared_state->lease_ttl == milliseconds(10'000));
  CHECK(defaults->shared_state->name_space == "default");

  struct Case {
    std::string_view json, says;
  };
  for (const Case& c :
       {Case{R"({"shared_state": {"namespace": "x"}})", "shared_state.redis_url is required"},
        Case{R"({"shared_state": {"redis_url": "redis://h", "on_unavailable": "retry"}})",
             "on_unavailable must be local or fail"},
        Case{R"({"shared_state": {"redis_url": "redis://h", "lease_ttl_ms": 10}})", "lease_ttl_ms"},
        Case{R"({"shared_state": {"redis_url": "redis://h", "ttl": 10}})", "unknown key shared_state.ttl"},
        Case{R"({"shared_state": "redis://h"})", "shared_state must be an object"}}) {
    auto bad = parse_client_options(c.json);
    REQUIRE_FALSE(bad.ok());
    CHECK_MESSAGE(bad.error().message.find(c.says) != std::string::npos, bad.error().message);
  }

  for (std::string_view url : {"rediss://:hunter2-password@cache:6380", "redis://:hunter2-password@cache:notaport"}) {
    ClientOptions options;
    options.targets = {{.name = "a", .model = "gpt-4o-mini", .api_key = "k"}};
    options.shared_state = SharedState{.redis_url = std::string(url)};
    auto client = Client::create(std::move(options));
    REQUIRE_FALSE(client.ok());
    CHECK(client.error().category == ErrorCategory::kBadRequest);
    CHECK(client.error().message.find("hunter2-password") == std::string::npos);
  }
  ClientOptions braces;
  braces.targets = {{.name = "a", .model = "gpt-4o-mini", .api_key = "k"}};
  braces.shared_state = SharedState{.redis_url = "redis://127.0.0.1:1/0", .name_space = "a}b"};
  auto refused = Client::create(std::move(braces));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("namespace") != std::string::npos);
}

TEST_CASE("A missing file is named in the error") {
  auto o = load_client_options("/nonexistent/llmguard.json");
  REQUIRE_FALSE(o.ok());
  CHECK(o.error().message.find("/nonexistent/llmguard.json") != std::string::npos);
}

TEST_CASE(
    "Streams for agents: restart_streams_on_failure and reasoning_ttft_ms are read; a local server needs no key") {
  auto o = parse_client_options(R"({"restart_streams_on_failure": true, "timeouts": {"reasoning_ttft_ms": 240000},
    "targets": [{"name": "local", "provider": "ollama", "model": "llama3"}]})");
  REQUIRE(o.ok());
  CHECK(o->restart_streams_on_failure);
  CHECK(o->timeouts.reasoning_ttft == milliseconds(240000));
  CHECK(parse_client_options(R"({"restart_streams_on_failure": "yes", "targets": []})").error().message ==
        "restart_streams_on_failure must be true or false");
  ::unsetenv("OLLAMA_API_KEY");
  CHECK(Client::create(*o).ok());  // OLLAMA_API_KEY unset: fine on this machine
  auto remote = parse_client_options(R"({"targets": [{"name": "g", "provider": "groq", "model": "m"}]})");
  REQUIRE(remote.ok());
  ::unsetenv("GROQ_API_KEY");
  auto refused = Client::create(*remote);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("GROQ_API_KEY, which is not set") != std::string::npos);
}

}  // namespace
}  // namespace llmguard
