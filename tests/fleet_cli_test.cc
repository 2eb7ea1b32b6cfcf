// Separate `llmguard chat` processes sharing one Redis namespace, as a
// fleet's workers would: a request limit, cooldowns, a budget, a killed
// process's slot, and `llmguard fleet`, the operator's view.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <simdjson.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "eventually.h"
#include "mock_server.h"
#include "redis_server.h"

extern char** environ;

namespace llmguard {
namespace {

using std::chrono::milliseconds;
using testing::eventually;
using testing::RedisServer;

struct Scratch {
  std::string dir;
  Scratch() {
    char path[] = "/tmp/llmguard-fleet-XXXXXX";
    dir = mkdtemp(path);
  }
  ~Scratch() { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = dir + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Process {
  pid_t pid = -1;
  std::string out_path, err_path;

  // `llmguard` with these arguments; its output goes to files.
  static Process start(const Scratch& scratch, const std::vector<std::string>& args) {
    static int n = 0;
    Process p;
    p.out_path = fmt::format("{}/out{}", scratch.dir, n);
    p.err_path = fmt::format("{}/err{}", scratch.dir, n++);
    std::vector<std::string> all = {LLMGUARD_CLI};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    REQUIRE(posix_spawn(&p.pid, LLMGUARD_CLI, &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    return p;
  }
  int wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void kill_now() {
    ::kill(pid, SIGKILL);
    wait();
  }
  std::string out() const { return slurp(out_path); }
  std::string err() const { return slurp(err_path); }
};

struct Ran {
  int exit;
  std::string out, err;
};

Ran run(const Scratch& scratch, const std::vector<std::string>& args) {
  Process p = Process::start(scratch, args);
  const int exit = p.wait();
  return {exit, p.out(), p.err()};
}

Ran chat(const Scratch& scratch, const std::string& config, const std::string& message = "hello") {
  return run(scratch, {"chat", "--config", config, "--message", message, "--max-tokens", "20"});
}
std::string shared_state(const RedisServer& redis, const std::string& extra = "") {
  return fmt::format(R"("shared_state": {{"redis_url": "{}", "namespace": "cli"{}}})", redis.url(), extra);
}

struct Fixture {
  RedisServer redis = *RedisServer::start({});
  std::unique_ptr<mock::MockServer> mock = std::move(mock::MockServer::start({}).value());
  Scratch scratch;
};

TEST_CASE("Separate processes share one request bucket") {
  Fixture f;
  const std::string config = f.scratch.write(
      "c.json",
      fmt::format(R"({{"targets": [{{"name": "a", "base_url": "{}", "model": "gpt-a", "api_key": "k-000000000",
                               "limits": {{"requests_per_minute": 2}}}}], "deadline_ms": 1000, {}}})",
                  f.mock->base_url(), shared_state(f.redis)));
  CHECK(chat(f.scratch, config).exit == 0);
  CHECK(chat(f.scratch, config).exit == 0);
  const Ran third = chat(f.scratch, config);
  CHECK(third.exit == 1);
  CHECK(third.out.find("\"rate_limit\"") != std::string::npos);
  CHECK(f.mock->stats().requests == 2);
}

TEST_CASE("A second process skips the target the first found with a bad key") {
  Fixture f;
  auto server = std::move(mock::MockServer::start({.require_key = "good-key-0123456789"}).value());
  const std::string config = f.scratch.write(
      "c.json",
      fmt::format(
          R"({{"targets": [{{"name": "primary", "base_url": "{0}", "model": "gpt-p", "api_key": "revoked-key-0000"}},
                                  {{"name": "backup", "base_url": "{0}", "model": "gpt-b", "api_key": "good-key-0123456789"}}],
                      {1}}})",
          server->base_url(), shared_state(f.redis)));
  const Ran first = chat(f.scratch, config);
  CHECK(first.exit == 0);
  CHECK(first.out.find("\"target\":\"backup\"") != std::string::npos);
  const Ran second = chat(f.scratch, config);
  CHECK(second.exit == 0);
  CHECK(second.out.find("\"target\":\"backup\"") != std::string::npos);
  CHECK(server->stats().by_model["gpt-p"] == 1);  // only the first process asked it

  const Ran fleet = run(f.scratch, {"fleet", "--config", config});
  REQUIRE(fleet.exit == 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(fleet.out);
  simdjson::dom::array breakers = doc["breakers"];
  REQUIRE(breakers.size() == 1);
  CHECK(std::string_view(breakers.at(0)["target"]) == "primary");
  CHECK(std::string_view(breakers.at(0)["opened_by"]) == "auth");
  CHECK(fleet.out.find("revoked-key") == std::string::npos);
}

TEST_CASE("Concurrent processes under one USD budget spend no more than it") {
  Fixture f;
  const double budget = 0.5;  // each call reserves ~$0.15 and spends ~$0.03
  const std::string config = f.scratch.write(
      "c.json",
      fmt::format(R"({{"targets": [{{"name": "a", "base_url": "{}", "model": "gpt-a", "api_key": "k-000000000",
                               "price": {{"input_per_mtok": 1000, "output_per_mtok": 2000}}}}],
                               "budget": {{"usd": {}}}, {}}})",
                  f.mock->base_url(), budget, shared_state(f.redis)));
  for (int i = 0; i < 8; ++i) f.mock->enqueue("*", {.delay = milliseconds(1000)});  // in flight together
  std::vector<Process> workers;
  for (int i = 0; i < 8; ++i) {
    workers.push_back(Process::start(
        f.scratch, {"chat", "--config", config, "--message", "worker " + std::to_string(i), "--max-tokens", "20"}));
  }
  double spent = 0;
  int ok = 0, refused = 0;
  simdjson::dom::parser parser;
  for (Process& w : workers) {
    const int exit = w.wait();
    const std::string out = w.out();
    simdjson::dom::element doc = parser.parse(out);
    if (exit == 0) {
      ++ok;
      spent += double(doc["cost_usd"]);
    } else if (std::string_view(doc["error"]["category"]) == "budget_exceeded") {
      ++refused;
    }
  }
  MESSAGE("ok=", ok, " refused=", refused, " spent=$", spent);
  CHECK(ok + refused == 8);
  CHECK(refused > 0);  // 8 reservations of ~$0.15 do not fit in $0.5 at once
  CHECK(spent <= budget);

  const Ran fleet = run(f.scratch, {"fleet", "--config", config});
  REQUIRE(fleet.exit == 0);
  simdjson::dom::element doc = parser.parse(fleet.out);
  simdjson::dom::array budgets = doc["budgets"];
  REQUIRE(budgets.size() == 1);
  CHECK(double(budgets.at(0)["spent_usd"]) == doctest::Approx(spent).epsilon(1e-6));
  CHECK(double(budgets.at(0)["reserved_usd"]) == doctest::Approx(0.0));
}

TEST_CASE("A SIGKILLed process's slot comes back after the lease TTL") {
  Fixture f;
  const std::string config = f.scratch.write(
      "c.json",
      fmt::format(R"({{"targets": [{{"name": "a", "base_url": "{}", "model": "gpt-a", "api_key": "k-000000000",
                               "limits": {{"max_concurrency": 1}}}}], "deadline_ms": 8000,
                               {}}})",
                  f.mock->base_url(), shared_state(f.redis, R"(, "lease_ttl_ms": 300)")));
  f.mock->enqueue("*", {.hang = true});
  Process doomed = Process::start(f.scratch, {"chat", "--config", config, "--message", "never answered"});
  REQUIRE(eventually([&] { return f.mock->stats().in_flight == 1; }));

  const Ran during = run(f.scratch, {"fleet", "--config", config});
  REQUIRE(during.exit == 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(during.out);
  CHECK(int64_t(doc["limits"].at(0)["in_flight"]) == 1);

  doomed.kill_now();
  // The slot is the dead process's until its lease runs out; then this one gets it.
  const Ran next = chat(f.scratch, config);
  CHECK(next.exit == 0);
  CHECK(next.out.find("\"ok\":true") != std::string::npos);
  CHECK(f.mock->stats().requests == 2);
}

TEST_CASE("With Redis down the CLI says so on stderr and goes on alone; fleet fails naming Redis") {
  Fixture f;
  const std::string config = f.scratch.write(
      "c.json",
      fmt::format(R"({{"targets": [{{"name": "a", "base_url": "{}", "model": "gpt-a", "api_key": "k-000000000",
                               "limits": {{"max_concurrency": 4}}}}], {}}})",
                  f.mock->base_url(), shared_state(f.redis)));
  f.redis.stop();
  const Ran alone = chat(f.scratch, config);
  CHECK(alone.exit == 0);
  CHECK(alone.err.find("llmguard: shared state unavailable") != std::string::npos);
  const Ran fleet = run(f.scratch, {"fleet", "--config", config});
  CHECK(fleet.exit == 1);
  CHECK(fleet.err.find("redis redis://127.0.0.1:") != std::string::npos);
}

}  // namespace
}  // namespace llmguard
