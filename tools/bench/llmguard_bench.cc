// llmguard-bench: N OpenAI-compatible chat calls through guarded_chat at
// concurrency C; prints one JSON object (the DESIGN.md contract).
#include <atomic>
#include <condition_variable>
#include <mutex>

#include "bench_common.h"
#include "llmguard/llmguard.h"

int main(int argc, char** argv) {
  auto args = llmguard::bench::parse_bench_args(argc, argv, "llmguard-bench");
  if (!args) return 2;
  llmguard::ClientOptions options;
  const auto provider = args->provider == "anthropic" ? llmguard::Provider::kAnthropic : llmguard::Provider::kOpenAI;
  options.targets = {
      {.name = "bench", .provider = provider, .base_url = args->url, .model = args->model, .api_key = "bench-key"}};
  if (!args->fallback_url.empty()) {
    options.targets.push_back({.name = "fallback",
                               .provider = provider,
                               .base_url = args->fallback_url,
                               .model = args->model,
                               .api_key = "bench-key"});
  }
  options.retry.base_delay = std::chrono::milliseconds(10);
  options.retry.max_delay = std::chrono::milliseconds(200);
  if (args->timeout_ms > 0) options.timeouts.total = std::chrono::milliseconds(args->timeout_ms);
  if (args->deadline_ms > 0) options.deadline = std::chrono::milliseconds(args->deadline_ms);
  auto client = llmguard::Client::create(std::move(options));
  if (!client.ok()) {
    std::fprintf(stderr, "llmguard-bench: %s\n", llmguard::describe(client.error()).c_str());
    return 2;
  }
  llmguard::ChatRequest request;
  request.messages = {llmguard::Message::user(llmguard::bench::kPrompt)};
  llmguard::CallOptions call_options;
  std::atomic<long> deltas{0};
  if (args->stream) call_options.on_delta = [&deltas](const llmguard::StreamDelta&) { ++deltas; };

  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::condition_variable all_done;
  llmguard::bench::BenchReport report;
  report.requests = args->requests;
  report.latencies_ms.reserve(static_cast<std::size_t>(args->requests));
  long started = 0, finished = 0;

  // Each completion starts the next call, keeping C in flight; callbacks run
  // on the client's loop thread, so the report needs a lock only for main.
  std::function<void()> start_one = [&] {
    const auto t0 = Clock::now();
    (*client)->guarded_chat_async(request, call_options, [&, t0](llmguard::Result<llmguard::ChatResponse> r) {
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      bool launch = false;
      {
        std::lock_guard lock(mu);
        report.latencies_ms.push_back(ms);
        const auto& attempts = r.ok() ? r->attempts : r.error().attempts;
        for (const auto& a : attempts) report.upstream_attempts += a.skipped ? 0 : 1;
        (r.ok() ? report.ok : report.errors) += 1;
        if (args->check && finished == 0) {
          if (r.ok()) {
            std::fprintf(stderr,
                         "llmguard-bench: first reply: %zu content bytes, finish_reason %s, usage %lld+%lld=%lld, "
                         "%ld deltas so far, id %s\n",
                         r->content.size(), r->finish_reason.c_str(), static_cast<long long>(r->usage.prompt_tokens),
                         static_cast<long long>(r->usage.completion_tokens),
                         static_cast<long long>(r->usage.total_tokens), deltas.load(), r->id.c_str());
          } else {
            std::fprintf(stderr, "llmguard-bench: first reply failed: %s\n", llmguard::describe(r.error()).c_str());
          }
        }
        ++finished;
        if (started < args->requests) {
          ++started;
          launch = true;
        }
        if (finished == args->requests) all_done.notify_all();
      }
      if (launch) start_one();
    });
  };
  const auto begin = Clock::now();
  {
    std::lock_guard lock(mu);
    started = std::min(args->concurrency, args->requests);
  }
  for (long i = 0; i < std::min(args->concurrency, args->requests); ++i) start_one();
  std::unique_lock lock(mu);
  all_done.wait(lock, [&] { return finished == args->requests; });
  report.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  llmguard::bench::print_report(report);
  return 0;
}
