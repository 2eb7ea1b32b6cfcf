// The command-line contracts other tools rely on (DESIGN.md): the exact code
// the `llmguard` binary runs, with its streams captured.
#include "cli.h"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "mock_server.h"

namespace llmguard::cli {
namespace {

// `llmguard chat` with `stdin_text` on its standard input.
int chat(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
         const std::string& stdin_text = "") {
  std::istringstream in(stdin_text);
  return run_chat(args, in, out, err);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_CASE("classify: one JSON line out per input line, in order, with every contract field") {
  std::istringstream in(
      R"({"status": 429, "headers": {"retry-after": "3"}, "body": "{\"error\":{\"message\":\"Rate limit reached\",\"code\":\"rate_limit_exceeded\"}}", "stream": false})"
      "\n"
      R"({"status": 429, "headers": {}, "body": "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}"})"
      "\n\n"
      "this is not json\n"
      R"({"status": 200, "headers": {}, "body": "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", "stream": true})"
      "\n");
  std::ostringstream out, err;
  CHECK(run_classify({}, in, out, err) == 0);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 5);
  simdjson::dom::parser parser;
  auto first = parser.parse(lines[0]).value();
  CHECK(std::string_view(first["category"]) == "rate_limit");
  CHECK(bool(first["retryable"]));
  CHECK(double(first["retry_after_s"]) == 3.0);
  CHECK(std::string_view(first["provider_code"]) == "rate_limit_exceeded");
  CHECK(std::string_view(first["message"]) == "Rate limit reached");
  CHECK_FALSE(std::string_view(first["hint"]).empty());
  auto second = parser.parse(lines[1]).value();
  CHECK(std::string_view(second["category"]) == "quota_exhausted");
  CHECK_FALSE(bool(second["retryable"]));
  CHECK(second["retry_after_s"].is_null());
  auto blank = parser.parse(lines[2]).value();
  CHECK(std::string_view(blank["category"]) == "unknown");
  CHECK(std::string_view(blank["input_error"]) == "the line is empty");
  auto third = parser.parse(lines[3]).value();
  CHECK(std::string_view(third["category"]) == "unknown");
  CHECK(third["input_error"].is_string());
  auto fourth = parser.parse(lines[4]).value();
  CHECK(std::string_view(fourth["category"]) == "transient");
  CHECK(std::string_view(fourth["message"]) == "Overloaded");
}

struct ChatFixture {
  std::unique_ptr<mock::MockServer> server =
      std::move(mock::MockServer::start({.require_key = "good-key-0123456789"}).value());
  std::string config_path = make_temp_path();

  static std::string make_temp_path() {
    char path[] = "/tmp/llmguard-cli-test-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    return path;
  }

  ~ChatFixture() { std::remove(config_path.c_str()); }
  void write_config(const std::string& json) { std::ofstream(config_path) << json; }
  std::string targets(const std::string& first_key) {
    return R"({"targets":[{"name":"primary","base_url":")" + server->base_url() + R"(","model":"gpt-a","api_key":")" +
           first_key + R"("},{"name":"backup","provider":"anthropic","base_url":")" + server->base_url() +
           R"(","model":"claude-x","api_key":"good-key-0123456789","price":{"input_per_mtok":1,"output_per_mtok":2}}],
           "retry":{"max_attempts":2,"base_delay_ms":1,"max_delay_ms":2}})";
  }
};

TEST_CASE("classify: blank and whitespace-only lines get an answer line each, so answers pair with inputs") {
  std::istringstream in(
      "\n   \r\n"
      R"({"status": 500, "body": "oops"})"
      "\n\t\n");
  std::ostringstream out, err;
  CHECK(run_classify({}, in, out, err) == 0);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 4);
  simdjson::dom::parser parser;
  for (std::size_t i : {0u, 1u, 3u}) {
    CAPTURE(i);
    auto line = parser.parse(lines[i]).value();
    CHECK(std::string_view(line["category"]) == "unknown");
    CHECK_FALSE(bool(line["retryable"]));
    CHECK(line["retry_after_s"].is_null());
    CHECK(std::string_view(line["input_error"]) == "the line is empty");
  }
  auto middle = parser.parse(lines[2]).value();
  CHECK(std::string_view(middle["category"]) == "transient");
  CHECK(middle["input_error"].error() == simdjson::NO_SUCH_FIELD);
}

TEST_CASE("classify: a status too large for any integer is an input error, not an overflowed conversion") {
  std::istringstream in(R"({"status": 1e300, "body": "x"})"
                        "\n"
                        R"({"status": -1e300, "body": "x"})"
                        "\n"
                        R"({"status": 429.0, "body": "x"})"
                        "\n");
  std::ostringstream out, err;
  CHECK(run_classify({}, in, out, err) == 0);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 3);
  simdjson::dom::parser parser;
  for (std::size_t i : {0u, 1u}) {
    auto line = parser.parse(lines[i]).value();
    CHECK(std::string_view(line["input_error"]) == "status must be an HTTP status code");
  }
  CHECK(std::string_view(parser.parse(lines[2]).value()["category"]) == "rate_limit");
}

TEST_CASE("classify --explain names the deciding rule and what it matched, with keys redacted") {
  std::istringstream in(
      R"({"status": 400, "body": "{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens. Key sk-proj-abcdefghijklmnop0123456789 used.\",\"code\":\"context_length_exceeded\"}}"})"
      "\n"
      R"({"status": 503, "body": ""})"
      "\n");
  std::ostringstream out, err;
  CHECK(run_classify({"--explain"}, in, out, err) == 0);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 2);
  simdjson::dom::parser parser;
  auto overflow = parser.parse(lines[0]).value();
  CHECK(std::string_view(overflow["category"]) == "context_overflow");
  const std::string_view rule = overflow["rule"];
  CHECK_FALSE(rule.empty());
  CHECK(std::string_view(overflow["evidence"]).find("context") != std::string_view::npos);
  CHECK(lines[0].find("abcdefghijklmnop0123456789") == std::string::npos);
  auto status_only = parser.parse(lines[1]).value();
  CHECK(std::string_view(status_only["category"]) == "transient");
  CHECK(std::string_view(status_only["rule"]) != rule);
  // Without --explain the contract's fields alone.
  std::istringstream again(R"({"status": 503, "body": ""})");
  std::ostringstream plain;
  CHECK(run_classify({}, again, plain, err) == 0);
  CHECK(plain.str().find("\"rule\"") == std::string::npos);
}

TEST_CASE("classify --config applies the file's classifier_rules before the built-in ones") {
  char path[] = "/tmp/llmguard-cli-rules-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << R"({"classifier_rules": [{"id": "gateway-allowance", "category": "quota_exhausted",
      "status": 429, "words": ["allowance"], "json_pointer": "/fault/text"},
      {"id": "gateway-wait", "category": "rate_limit", "words": ["slow down"], "delay_field": "/fault/wait_s"}]})";
  std::istringstream in(
      R"({"status": 429, "body": "{\"fault\":{\"text\":\"Monthly allowance used up\"}}"})"
      "\n"
      R"({"status": 400, "body": "{\"error\":{\"message\":\"Please slow down\"},\"fault\":{\"wait_s\":7}}"})"
      "\n"
      R"({"status": 429, "body": "{\"fault\":{\"text\":\"busy\"}}"})"
      "\n");
  std::ostringstream out, err;
  CHECK(run_classify({"--config", path, "--explain"}, in, out, err) == 0);
  std::remove(path);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 3);
  simdjson::dom::parser parser;
  auto allowance = parser.parse(lines[0]).value();
  CHECK(std::string_view(allowance["category"]) == "quota_exhausted");
  CHECK(std::string_view(allowance["rule"]) == "gateway-allowance");
  CHECK(std::string_view(allowance["evidence"]).find("allowance") != std::string_view::npos);
  auto wait = parser.parse(lines[1]).value();
  CHECK(std::string_view(wait["category"]) == "rate_limit");
  CHECK(std::string_view(wait["rule"]) == "gateway-wait");
  CHECK(double(wait["retry_after_s"]) == 7.0);
  auto builtin = parser.parse(lines[2]).value();
  CHECK(std::string_view(builtin["category"]) == "rate_limit");
  CHECK(std::string_view(builtin["rule"]) != "gateway-allowance");
}

TEST_CASE("classify --config refuses a rule that cannot work, saying which and why, before reading input") {
  char path[] = "/tmp/llmguard-cli-rules-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << R"({"classifier_rules": [{"id": "no-conditions", "category": "auth"}]})";
  std::istringstream in(R"({"status": 500, "body": "x"})");
  std::ostringstream out, err;
  CHECK(run_classify({"--config", path}, in, out, err) == 2);
  std::remove(path);
  CHECK(out.str().empty());
  CHECK(err.str().find("no-conditions") != std::string::npos);
  std::ostringstream out2, err2;
  CHECK(run_classify({"--bogus"}, in, out2, err2) == 2);
  CHECK(err2.str().find("usage:") != std::string::npos);
}

TEST_CASE("chat: success prints one object with target, usage, cost and the attempt trail") {
  ChatFixture f;
  f.write_config(f.targets("sk-bad-key-abcdef0123456789"));
  std::ostringstream out, err;
  const int status = chat({"--config", f.config_path, "--message", "hi"}, out, err);
  CHECK(status == 0);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 1);
  simdjson::dom::parser parser;
  auto root = parser.parse(lines[0]).value();
  CHECK(bool(root["ok"]));
  CHECK(std::string_view(root["target"]) == "backup");
  CHECK(std::string_view(root["content"]) == "Hello from claude-x. You said: hi");
  CHECK(std::string_view(root["finish_reason"]) == "stop");  // Anthropic's end_turn, normalised
  CHECK(int64_t(root["usage"]["total_tokens"]) > 0);
  CHECK_FALSE(bool(root["usage"]["estimated"]));
  CHECK(double(root["cost_usd"]) > 0);
  auto attempts = root["attempts"].get_array().value();
  REQUIRE(attempts.size() == 2);
  CHECK(std::string_view(attempts.at(0)["category"]) == "auth");
  CHECK(int64_t(attempts.at(0)["status"]) == 401);
  CHECK(attempts.at(1)["category"].is_null());
  CHECK(attempts.at(1)["waited_ms"].is_int64());
  CHECK(out.str().find("abcdef0123456789") == std::string::npos);
  CHECK(err.str().find("abcdef0123456789") == std::string::npos);
}

TEST_CASE(
    "chat: the success object names the model that answered, and each failed attempt says why the call moved on") {
  ChatFixture f;
  f.write_config(f.targets("sk-bad-key-abcdef0123456789"));
  std::ostringstream out, err;
  REQUIRE(chat({"--config", f.config_path, "--message", "hi"}, out, err) == 0);
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  CHECK(std::string_view(root["model"]) == "claude-x");  // the backup's model, after the primary's 401
  auto attempts = root["attempts"].get_array().value();
  REQUIRE(attempts.size() == 2);
  CHECK(std::string_view(attempts.at(0)["next"]) == "next_target");
  CHECK(std::string_view(attempts.at(0)["reason"]) == "category_default");
  CHECK(attempts.at(1)["next"].error() == simdjson::NO_SUCH_FIELD);  // the success moved nowhere
}

TEST_CASE("chat --stream --restart-on-failure: a stream cut after text restarts on the backup, one complete answer") {
  ChatFixture f;
  f.server->enqueue("gpt-a", {.content = "one two three four five six seven eight", .truncate_after_events = 4});
  f.write_config(f.targets("good-key-0123456789"));
  std::ostringstream out, err;
  REQUIRE(chat({"--config", f.config_path, "--message", "hi", "--stream", "--restart-on-failure"}, out, err) == 0);
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  CHECK(std::string_view(root["target"]) == "backup");
  CHECK(std::string_view(root["content"]) == "Hello from claude-x. You said: hi");
  CHECK(err.str().find("[llmguard: restarting the reply]") != std::string::npos);
  std::ostringstream out2, err2;
  f.server->enqueue("gpt-a", {.content = "one two three four five six seven eight", .truncate_after_events = 4});
  CHECK(chat({"--config", f.config_path, "--message", "hi", "--stream"}, out2, err2) == 1);  // the safe default
  CHECK(parser.parse(out2.str()).value()["partial_content"].is_string());
}

TEST_CASE("chat: failure prints ok=false with the last error, and exits 1") {
  ChatFixture f;
  f.server->enqueue(
      "claude-x",
      {.status = 400,
       .body =
           R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: must be positive"}})"});
  f.write_config(f.targets("sk-bad-key-abcdef0123456789"));
  std::ostringstream out, err;
  CHECK(chat({"--config", f.config_path, "--message", "hi"}, out, err) == 1);
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  CHECK_FALSE(bool(root["ok"]));
  CHECK(std::string_view(root["error"]["category"]) == "bad_request");
  CHECK(int64_t(root["error"]["status"]) == 400);
  CHECK(std::string_view(root["error"]["message"]) == "max_tokens: must be positive");
  CHECK(root["attempts"].get_array().size() == 2);
  CHECK(root["partial_content"].error() == simdjson::NO_SUCH_FIELD);
}

TEST_CASE("chat --stream: deltas go to stderr, stdout holds exactly the one object") {
  ChatFixture f;
  f.write_config(f.targets("good-key-0123456789"));
  std::ostringstream out, err;
  CHECK(chat({"--config", f.config_path, "--message", "stream it", "--stream"}, out, err) == 0);
  CHECK(lines_of(out.str()).size() == 1);
  CHECK(err.str().find("Hello from gpt-a. You said: stream it") != std::string::npos);
}

TEST_CASE("chat: a bad config is a bad_request object, not a crash") {
  ChatFixture f;
  f.write_config(R"({"targets":[{"name":"x","model":"m","colour":"blue"}]})");
  std::ostringstream out, err;
  CHECK(chat({"--config", f.config_path, "--message", "hi"}, out, err) == 1);
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  CHECK(std::string_view(root["error"]["category"]) == "bad_request");
  CHECK(std::string_view(root["error"]["message"]).find("targets[0].colour") != std::string_view::npos);
  std::ostringstream out2, err2;
  CHECK(chat({"--message", "hi"}, out2, err2) == 2);
  CHECK(out2.str().empty());
}

TEST_CASE("doctor: one line per target with the hint for each failure") {
  ChatFixture f;
  f.write_config(f.targets("sk-bad-key-abcdef0123456789"));
  std::ostringstream out, err;
  CHECK(run_doctor({"--config", f.config_path}, out, err) == 1);
  const std::string text = out.str();
  CHECK(text.find("primary          FAIL    auth (HTTP 401)") != std::string::npos);
  CHECK(text.find("hint: the API key is missing") != std::string::npos);
  CHECK(text.find("backup           OK") != std::string::npos);
  CHECK(text.find("abcdef0123456789") == std::string::npos);
}

// Runs chat and returns its one stdout object's error message.
std::string chat_error_message(ChatFixture& f, int* status = nullptr) {
  std::ostringstream out, err;
  const int rc = chat({"--config", f.config_path, "--message", "hi"}, out, err);
  if (status) *status = rc;
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  return std::string(std::string_view(root["error"]["message"]));
}

TEST_CASE("doctor rejects every config chat rejects, with the same message") {
  ChatFixture f;
  const std::string url = f.server->base_url();
  const std::string configs[] = {
      R"({"targets": [{"name": "a", "model": "m", "base_url": ")" + url + R"("},
                      {"name": "a", "model": "n", "base_url": ")" +
          url + R"("}]})",
      R"({"targets": []})",
      R"({"retry": {"max_attempts": 2}})",
      R"({"targets": [{"name": "az", "provider": "azure", "model": "dep", "api_key": "k"}]})",
      R"({"targets": [{"name": "a", "model": "m", "base_url": ")" + url + R"("}],
          "retry": {"base_delay_ms": 500, "max_delay_ms": 10}})",
  };
  for (const std::string& config : configs) {
    CAPTURE(config);
    f.write_config(config);
    int chat_status = 0;
    const std::string message = chat_error_message(f, &chat_status);
    CHECK(chat_status == 1);
    CHECK_FALSE(message.empty());
    std::ostringstream out, err;
    CHECK(run_doctor({"--config", f.config_path}, out, err) == 1);
    CHECK(out.str() == "config: " + message + "\n");
  }
  CHECK(f.server->stats().requests == 0);
}

TEST_CASE("doctor reports a key variable that is not set with the message chat gives") {
  ChatFixture f;
  ::unsetenv("LLMGUARD_CLI_TEST_UNSET_KEY");
  f.write_config(R"({"targets": [{"name": "a", "model": "gpt-a", "api_key_env": "LLMGUARD_CLI_TEST_UNSET_KEY",
                 "base_url": ")" +
                 f.server->base_url() + R"("}], "retry": {"max_attempts": 1}})");
  const std::string message = chat_error_message(f);
  REQUIRE_FALSE(message.empty());
  std::ostringstream out, err;
  CHECK(run_doctor({"--config", f.config_path}, out, err) == 1);
  // Whether Client::create refuses the config or the provider refuses the
  // call, doctor says what chat says.
  CHECK(out.str().find(message) != std::string::npos);
}

TEST_CASE("doctor names duplicate targets and an empty chain instead of reporting them healthy") {
  ChatFixture f;
  f.write_config(R"({"targets": [{"name": "a", "model": "gpt-a", "api_key": "good-key-0123456789", "base_url": ")" +
                 f.server->base_url() + R"("}, {"name": "a", "model": "gpt-b", "api_key": "good-key-0123456789",
                 "base_url": ")" +
                 f.server->base_url() + R"("}]})");
  std::ostringstream out, err;
  CHECK(run_doctor({"--config", f.config_path}, out, err) == 1);
  CHECK(out.str().find("duplicate name \"a\"") != std::string::npos);
  CHECK(out.str().find("OK") == std::string::npos);
  f.write_config(R"({"targets": []})");
  std::ostringstream out2, err2;
  CHECK(run_doctor({"--config", f.config_path}, out2, err2) == 1);
  CHECK(out2.str().find("no targets") != std::string::npos);
}

// A gateway credential with no well-known shape, so only the configured-secret redactor can catch it.
constexpr std::string_view kGatewaySecret = "corp-secret-0123456789abcdef";

bool shows_secret(const std::string& text) {
  return text.find(kGatewaySecret) != std::string::npos ||
         text.find("CORP-SECRET-0123456789ABCDEF") != std::string::npos ||
         text.find("0123456789abcdef") != std::string::npos;
}

TEST_CASE("chat and doctor never print a credential given in an Authorization header, even when the server echoes it") {
  ::unsetenv("OPENAI_API_KEY");
  ChatFixture f;  // the mock's 401 body echoes the presented bearer token, as OpenAI's does
  f.write_config(R"({"targets": [{"name": "gw", "model": "gpt-a", "base_url": ")" + f.server->base_url() +
                 R"(", "headers": {"Authorization": "Bearer )" + std::string(kGatewaySecret) + R"("}}],
                 "retry": {"max_attempts": 1}})");
  std::ostringstream out, err;
  CHECK(chat({"--config", f.config_path, "--message", "hi"}, out, err) == 1);
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  CHECK(std::string_view(root["error"]["category"]) == "auth");
  CHECK(std::string_view(root["error"]["message"]).find("Incorrect API key provided: ***") != std::string_view::npos);
  CHECK_FALSE(shows_secret(out.str()));
  CHECK_FALSE(shows_secret(err.str()));
  std::ostringstream dout, derr;
  CHECK(run_doctor({"--config", f.config_path}, dout, derr) == 1);
  CHECK(dout.str().find("gw               FAIL    auth (HTTP 401)") != std::string::npos);
  CHECK(dout.str().find("***") != std::string::npos);
  CHECK_FALSE(shows_secret(dout.str()));
  CHECK_FALSE(shows_secret(derr.str()));
}

TEST_CASE("chat and doctor mask a custom credential header echoed back in any case, and a key from api_key_env") {
  ChatFixture f;
  ::setenv("LLMGUARD_CLI_TEST_KEY", "good-key-0123456789", 1);
  f.write_config(R"({"targets": [{"name": "gw", "model": "gpt-a", "base_url": ")" + f.server->base_url() +
                 R"(", "api_key_env": "LLMGUARD_CLI_TEST_KEY", "headers": {"x-gateway-key": ")" +
                 std::string(kGatewaySecret) + R"("}}], "retry": {"max_attempts": 1}})");
  const std::string echo =
      R"({"error":{"message":"gateway rejected key CORP-SECRET-0123456789ABCDEF for good-key-0123456789",)"
      R"("type":"invalid_request_error","code":"bad_gateway_key"}})";
  f.server->enqueue("gpt-a", {.status = 400, .body = echo});
  std::ostringstream out, err;
  CHECK(chat({"--config", f.config_path, "--message", "hi"}, out, err) == 1);
  CHECK(out.str().find("gateway rejected key *** for ***") != std::string::npos);
  CHECK_FALSE(shows_secret(out.str()));
  CHECK(out.str().find("good-key-0123456789") == std::string::npos);
  CHECK_FALSE(shows_secret(err.str()));
  f.server->enqueue("gpt-a", {.status = 400, .body = echo});
  std::ostringstream dout, derr;
  CHECK(run_doctor({"--config", f.config_path}, dout, derr) == 1);
  CHECK(dout.str().find("gateway rejected key *** for ***") != std::string::npos);
  CHECK_FALSE(shows_secret(dout.str()));
  CHECK(dout.str().find("good-key-0123456789") == std::string::npos);
  ::unsetenv("LLMGUARD_CLI_TEST_KEY");
}

TEST_CASE("chat --stream masks a credential the model repeats, on stderr and in the stdout content") {
  ChatFixture f;
  f.write_config(R"({"targets": [{"name": "gw", "model": "gpt-a", "base_url": ")" + f.server->base_url() +
                 R"(", "api_key": "good-key-0123456789", "headers": {"x-gateway-key": ")" +
                 std::string(kGatewaySecret) + R"("}}]})");
  f.server->enqueue("gpt-a", {.content = "your key is " + std::string(kGatewaySecret) + " and that is all"});
  std::ostringstream out, err;
  CHECK(chat({"--config", f.config_path, "--message", "hi", "--stream"}, out, err) == 0);
  CHECK(err.str().find("your key is *** and that is all") != std::string::npos);
  CHECK_FALSE(shows_secret(err.str()));
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  CHECK(std::string_view(root["content"]) == "your key is *** and that is all");
  CHECK_FALSE(shows_secret(out.str()));
}

TEST_CASE("TerminalEscaper makes C0, ESC, DEL and C1 controls visible and keeps newlines, tabs and other UTF-8") {
  CHECK(escape_terminal_controls("a\x1b[31mred\x1b]0;title\x07 b") == "a\\x1b[31mred\\x1b]0;title\\x07 b");
  CHECK(escape_terminal_controls("x\ry\bz\x7f\x01") == "x\\x0dy\\x08z\\x7f\\x01");
  CHECK(escape_terminal_controls("line\n\ttab") == "line\n\ttab");
  CHECK(escape_terminal_controls("\xc2\x9b"
                                 "2J \xc2\x85") == "\\u009b2J \\u0085");
  CHECK(escape_terminal_controls("caf\xc3\xa9 \xc2\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xc2\xa9 \xe2\x82\xac");
  TerminalEscaper split;
  std::string shown = split.feed("a\xc2");
  CHECK(shown == "a");  // the C2 waits: it may start a C1 control
  shown += split.feed(
      "\x9b"
      "b\xc2");
  shown += split.feed("\xa9");
  shown += split.feed("\xc2");
  shown += split.finish();
  CHECK(shown == "a\\u009bb\xc2\xa9\xc2");
}

TEST_CASE("chat --stream does not copy terminal escape sequences from the model to stderr") {
  ChatFixture f;
  f.write_config(f.targets("good-key-0123456789"));
  f.server->enqueue("gpt-a", {.content = "red\x1b[31m title\x1b]0;pwned\x07 csi\xc2\x9b"
                                         "2J del\x7f tab\tend"});
  std::ostringstream out, err;
  CHECK(chat({"--config", f.config_path, "--message", "hi", "--stream"}, out, err) == 0);
  const std::string e = err.str();
  CHECK(e.find("red\\x1b[31m title\\x1b]0;pwned\\x07 csi\\u009b2J del\\x7f tab\tend") != std::string::npos);
  CHECK(e.find('\x1b') == std::string::npos);
  CHECK(e.find('\x07') == std::string::npos);
  CHECK(e.find('\x7f') == std::string::npos);
  CHECK(e.find("\xc2\x9b") == std::string::npos);
  // stdout is JSON, whose strings escape controls themselves; the content stays exact there.
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  CHECK(std::string_view(root["content"]) ==
        "red\x1b[31m title\x1b]0;pwned\x07 csi\xc2\x9b"
        "2J del\x7f tab\tend");
}

}  // namespace
}  // namespace llmguard::cli

namespace llmguard::cli {
namespace {

// A request file in OpenAI's chat format, written to a temporary path.
struct RequestFile {
  std::string path = ChatFixture::make_temp_path();
  explicit RequestFile(const std::string& json) { std::ofstream(path) << json; }
  ~RequestFile() { std::remove(path.c_str()); }
};

constexpr std::string_view kToolRequest = R"({
  "model": "gpt-4o",
  "messages": [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": [{"type": "text", "text": "weather in "}, {"type": "text", "text": "Oslo?"}]},
    {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "4 C and rain"}
  ],
  "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather now",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}],
  "tool_choice": "auto", "max_completion_tokens": 200, "temperature": 0.2, "stop": "END",
  "caller_tag": "agent-7"
})";

TEST_CASE("chat --request: an OpenAI-style request with tools and a tool exchange reaches each API in its own form") {
  ChatFixture f;
  f.write_config(f.targets("bad-key"));  // the primary's 401 sends it on to Anthropic
  RequestFile request{std::string(kToolRequest)};
  std::ostringstream out, err;
  REQUIRE(chat({"--config", f.config_path, "--request", request.path}, out, err) == 0);
  simdjson::dom::parser parser;
  auto root = parser.parse(out.str()).value();
  CHECK(std::string_view(root["target"]) == "backup");
  CHECK(std::string_view(root["finish_reason"]) == "stop");
  const auto sent = f.server->recent_requests();
  REQUIRE(sent.size() == 2);
  // OpenAI: the messages as written, tools and the tool result.
  const std::string& openai = sent[0].body;
  CHECK(openai.find(R"("model":"gpt-a")") != std::string::npos);  // the chain's model, not the file's
  CHECK(openai.find(R"("content":"weather in Oslo?")") != std::string::npos);
  CHECK(openai.find(R"("tool_call_id":"call_1")") != std::string::npos);
  CHECK(openai.find(R"("max_tokens":200)") != std::string::npos);
  CHECK(openai.find(R"("stop":["END"])") != std::string::npos);
  CHECK(openai.find("agent-7") == std::string::npos);  // the caller tag is never sent upstream
  // Anthropic: tool_use and tool_result blocks, the system prompt apart.
  const std::string& anthropic = sent[1].body;
  CHECK(anthropic.find(R"("system":"be brief")") != std::string::npos);
  CHECK(anthropic.find(R"({"type":"tool_use","id":"call_1","name":"weather","input":{"city":"Oslo"}})") !=
        std::string::npos);
  CHECK(anthropic.find(R"({"type":"tool_result","tool_use_id":"call_1","content":"4 C and rain"})") !=
        std::string::npos);
  CHECK(anthropic.find(R"("input_schema":{"type":"object","properties":{"city":{"type":"string"}}})") !=
        std::string::npos);
}

TEST_CASE("chat --request - reads the request from stdin; --message - the message; flags override the request") {
  ChatFixture f;
  f.write_config(f.targets("good-key-0123456789"));
  std::ostringstream out, err;
  REQUIRE(chat({"--config", f.config_path, "--request", "-", "--max-tokens", "7", "--tag", "cli"}, out, err,
               R"({"messages": [{"role": "user", "content": "from stdin"}], "max_tokens": 100})") == 0);
  auto sent = f.server->recent_requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].body.find(R"("content":"from stdin")") != std::string::npos);
  CHECK(sent[0].body.find(R"("max_tokens":7)") != std::string::npos);

  std::ostringstream out2, err2;
  REQUIRE(chat({"--config", f.config_path, "--message", "-", "--system", "answer in French"}, out2, err2,
               "piped question\n") == 0);
  sent = f.server->recent_requests();
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].body.find(R"({"role":"system","content":"answer in French"})") != std::string::npos);
  CHECK(sent[1].body.find(R"({"role":"user","content":"piped question"})") != std::string::npos);
}

TEST_CASE("chat --request: a malformed request is refused before anything is sent, naming the member at fault") {
  ChatFixture f;
  f.write_config(f.targets("good-key-0123456789"));
  struct Case {
    std::string_view json, phrase;
  };
  const Case cases[] = {
      {"", "is empty"},
      {"  \n", "is empty"},
      {"not json", "not valid JSON"},
      {R"([1, 2])", "must be a JSON object"},
      {R"({"messages": []})", "messages is required"},
      {R"({"messages": [{"role": "wizard", "content": "x"}]})", "messages[0].role must be"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})",
       "messages[0].content[0] must be a text part"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})", "messages[0].tool_call_id is required"},
      {R"({"messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]})",
       "messages[0].tool_calls[0].id is required"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", "max_tokens must be a positive"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temprature": 1})", "temprature is not a member"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"})", "tool_choice must be"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {}}]})",
       "tools[0].function.name is required"},
      {R"({"messages": [{"role": "user", "content": "x"}], "group": "fast"})", "defines no groups"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code", "function": {"name": "f"}}]})",
       "tools[0].type must be \"function\""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json);
    RequestFile request{std::string(c.json)};
    std::ostringstream out, err;
    CHECK(chat({"--config", f.config_path, "--request", request.path}, out, err) == 2);
    CHECK(err.str().find(c.phrase) != std::string::npos);
    CHECK(out.str().empty());
  }
  CHECK(f.server->stats().requests == 0);
}

TEST_CASE("chat: --help exits 0; a message and a request together, or neither, is a usage error") {
  ChatFixture f;
  f.write_config(f.targets("good-key-0123456789"));
  std::ostringstream help, help_err;
  CHECK(chat({"--help"}, help, help_err) == 0);
  CHECK(help.str().find("--request") != std::string::npos);
  for (const std::vector<std::string>& words : {std::vector<std::string>{"llmguard", "classify", "--help"},
                                                {"llmguard", "doctor", "--help"},
                                                {"llmguard", "mock", "--help"},
                                                {"llmguard", "--help"}}) {
    CAPTURE(words[1]);
    std::vector<char*> argv;
    for (const std::string& w : words) argv.push_back(const_cast<char*>(w.c_str()));
    std::istringstream in;
    std::ostringstream out, err;
    CHECK(run_cli(static_cast<int>(argv.size()), argv.data(), in, out, err) == 0);
    CHECK(err.str().empty());
  }
  RequestFile request{R"({"messages": [{"role": "user", "content": "x"}]})"};
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--config", f.config_path},
        {"--config", f.config_path, "--message", "hi", "--request", request.path},
        {"--config", f.config_path, "--request", request.path, "--system", "s"},
        {"--config", f.config_path, "--message", "hi", "--max-tokens", "many"},
        {"--config", f.config_path, "--message", "hi", "--group", "fast"}}) {
    std::ostringstream out, err;
    CHECK(chat(args, out, err) == 2);
    CHECK(out.str().empty());
  }
  CHECK(f.server->stats().requests == 0);
}

}  // namespace
}  // namespace llmguard::cli
