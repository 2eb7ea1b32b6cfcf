// What sharing state through Redis costs, and whether a fleet holds its
// limits (docs/fleet.md has the figures; bench/fleet.sh runs both modes).
//
//   fleet_bench cost --url MOCK_API_ROOT --redis REDIS_URL [--requests N] [--concurrency C]
//     The same calls three ways in one run: without shared_state; with it
//     but nothing to share (no limits, no budget); with a concurrency
//     limit, a request limit and a budget. Per way: p50/p99 latency and the
//     Redis commands per attempt (from the server's INFO commandstats).
//   fleet_bench load --url MOCK_API_ROOT --redis REDIS_URL --seconds S --threads T
//                    [--rpm R] [--budget-usd B] [--namespace NS]
//     One fleet worker: T threads calling as fast as the fleet lets them for
//     S seconds; prints what came back as JSON.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "llmguard/client.h"
#include "state/redis_connection.h"

namespace {

using namespace llmguard;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string mode, url, redis, name_space = "bench";
  long requests = 5000, concurrency = 8, seconds = 60, threads = 8;
  double rpm = 0, budget_usd = 0;
};

const Price kPrice{.input_per_mtok = 0.15, .output_per_mtok = 0.60};

ChatRequest request() {
  ChatRequest r;
  r.messages = {Message::user(bench::kPrompt)};
  r.max_tokens = 32;
  return r;
}

// Every command the server has run so far, those inside scripts too (INFO
// commandstats, INFO itself left out): what the fleet costs Redis.
long redis_commands(const std::string& url) {
  auto endpoint = internal::parse_redis_url(url);
  if (!endpoint.ok()) return -1;
  internal::RedisConnection redis(std::move(*endpoint), milliseconds(2000));
  auto info = redis.command({"INFO", "commandstats"});
  if (!info.ok()) return -1;
  long total = 0;
  const std::string& text = info->text;
  for (std::size_t at = text.find("cmdstat_"); at != std::string::npos; at = text.find("cmdstat_", at + 1)) {
    if (text.compare(at, 13, "cmdstat_info:") == 0) continue;
    const std::size_t calls = text.find("calls=", at);
    if (calls != std::string::npos) total += std::atol(text.c_str() + calls + 6);
  }
  return total;
}

// A counter of Client::metrics(): what the client itself says it sent.
double metric(const Client& client, std::string_view name) {
  const std::string text = client.metrics();
  const std::string line = std::string("\n") + std::string(name) + " ";
  const std::size_t at = text.find(line);
  return at == std::string::npos ? 0 : std::atof(text.c_str() + at + line.size());
}

struct Work {
  double round_trips = 0, scripts = 0, commands = 0;
};

Work work_so_far(const Client& client, const std::string& redis) {
  return {.round_trips = metric(client, "llmguard_shared_state_round_trips_total"),
          .scripts = metric(client, "llmguard_shared_state_scripts_total"),
          .commands = static_cast<double>(redis_commands(redis))};
}

struct Way {
  const char* name;
  bool shared;
  bool limited;
};

void run_cost(const Args& a) {
  std::printf("%-28s %9s %9s %9s %13s %13s %13s\n", "way", "rps", "p50_ms", "p99_ms", "trips/attempt", "scripts/att.",
              "redis_cmds/a.");
  double base_p50 = 0, base_p99 = 0;
  for (const Way way : {Way{"no shared_state", false, false}, Way{"shared_state, nothing shared", true, false},
                        Way{"shared_state, limits+budget", true, true}}) {
    ClientOptions o;
    Target t{.name = "bench", .base_url = a.url, .model = "gpt-4o-mini", .api_key = "bench-key", .price = kPrice};
    if (way.limited) {
      t.limits = {.max_concurrency = 10'000, .requests_per_minute = 1e8, .tokens_per_minute = 1'000'000'000};
      o.budgets = {Budget{.usd = 1e6}};
    }
    o.targets = {t};
    if (way.shared) o.shared_state = SharedState{.redis_url = a.redis, .name_space = a.name_space};
    auto client = std::move(Client::create(std::move(o)).value());
    const ChatRequest req = request();
    for (int i = 0; i < 200; ++i) (void)client->guarded_chat(req);  // warm connections and scripts
    const Work before = way.shared ? work_so_far(*client, a.redis) : Work{};
    std::vector<std::vector<double>> latencies(a.concurrency);
    std::atomic<long> next{0}, failed{0};
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (long c = 0; c < a.concurrency; ++c) {
      threads.emplace_back([&, c] {
        while (next.fetch_add(1) < a.requests) {
          const auto t0 = Clock::now();
          if (!client->guarded_chat(req).ok()) ++failed;
          latencies[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
      });
    }
    for (auto& th : threads) th.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const Work after = way.shared ? work_so_far(*client, a.redis) : Work{};
    const auto per_attempt = [&](double at_end, double at_start) {
      return (at_end - at_start) / static_cast<double>(a.requests);
    };
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    const double p50 = bench::percentile(all, 0.5), p99 = bench::percentile(all, 0.99);
    if (!way.shared) base_p50 = p50, base_p99 = p99;
    std::printf("%-28s %9.1f %9.3f %9.3f %13.2f %13.2f %13.2f%s\n", way.name, static_cast<double>(a.requests) / seconds,
                p50, p99, per_attempt(after.round_trips, before.round_trips),
                per_attempt(after.scripts, before.scripts), per_attempt(after.commands, before.commands),
                failed ? "  (some calls failed)" : "");
    if (way.shared)
      std::printf("%-28s %9s %+9.3f %+9.3f   (ms added vs no shared_state)\n", "", "", p50 - base_p50, p99 - base_p99);
  }
}

void run_load(const Args& a) {
  ClientOptions o;
  Target t{.name = "bench", .base_url = a.url, .model = "gpt-4o-mini", .api_key = "bench-key", .price = kPrice};
  if (a.rpm > 0) t.limits.requests_per_minute = a.rpm;
  o.targets = {t};
  if (a.budget_usd > 0) o.budgets = {Budget{.usd = a.budget_usd}};
  o.shared_state = SharedState{.redis_url = a.redis, .name_space = a.name_space};
  o.deadline = milliseconds(5000);
  auto client = std::move(Client::create(std::move(o)).value());
  std::atomic<long> ok{0}, limited{0}, refused{0}, other{0};
  std::atomic<std::int64_t> cost_nano{0};
  const auto end = Clock::now() + std::chrono::seconds(a.seconds);
  std::vector<std::thread> threads;
  for (long i = 0; i < a.threads; ++i) {
    threads.emplace_back([&] {
      const ChatRequest req = request();
      while (Clock::now() < end) {
        auto r = client->guarded_chat(req);
        if (r.ok()) {
          ++ok;
          cost_nano += static_cast<std::int64_t>(r->cost_usd.value_or(0) * 1e9);
        } else if (r.error().category == ErrorCategory::kRateLimit || r.error().category == ErrorCategory::kTimeout) {
          ++limited;
        } else if (r.error().category == ErrorCategory::kBudgetExceeded) {
          ++refused;
          // Spent: this worker is done.
          if (a.rpm == 0) return;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::printf("{\"ok\": %ld, \"limited\": %ld, \"budget_refused\": %ld, \"other\": %ld, \"cost_usd\": %.9f}\n",
              ok.load(), limited.load(), refused.load(), other.load(), static_cast<double>(cost_nano.load()) / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc > 1) a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--url") a.url = v;
    else if (k == "--redis") a.redis = v;
    else if (k == "--namespace") a.name_space = v;
    else if (k == "--requests") a.requests = std::atol(v);
    else if (k == "--concurrency") a.concurrency = std::atol(v);
    else if (k == "--seconds") a.seconds = std::atol(v);
    else if (k == "--threads") a.threads = std::atol(v);
    else if (k == "--rpm") a.rpm = std::atof(v);
    else if (k == "--budget-usd") a.budget_usd = std::atof(v);
    else {
      std::fprintf(stderr, "fleet_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if ((a.mode != "cost" && a.mode != "load") || a.url.empty() || a.redis.empty()) {
    std::fprintf(stderr,
                 "usage: fleet_bench cost --url URL --redis REDIS_URL [--requests N] [--concurrency C]\n"
                 "       fleet_bench load --url URL --redis REDIS_URL --seconds S --threads T [--rpm R] "
                 "[--budget-usd B] [--namespace NS]\n");
    return 2;
  }
  if (a.mode == "cost") run_cost(a);
  else run_load(a);
  return 0;
}
