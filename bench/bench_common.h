// What llmguard-bench and raw-curl-bench share: the command line, the request
// body and the JSON report, so that their numbers compare one to one.
#ifndef LLMGUARD_BENCH_BENCH_COMMON_H_
#define LLMGUARD_BENCH_BENCH_COMMON_H_

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace llmguard::bench {

struct BenchArgs {
  std::string url;  // API root, e.g. http://127.0.0.1:8089/v1
  long requests = 1000;
  long concurrency = 1;
  bool stream = false;
  std::string model = "gpt-4o-mini";
  // "openai" (POST {url}/chat/completions) or "anthropic" (POST {url}/messages
  // with x-api-key and anthropic-version).
  std::string provider = "openai";
  bool check = false;  // print what the first reply parsed to, on stderr
  // llmguard-bench only: a second target, and attempt/call time limits.
  std::string fallback_url;
  long timeout_ms = 0;
  long deadline_ms = 0;
};

inline std::optional<BenchArgs> parse_bench_args(int argc, char** argv, const char* program) {
  BenchArgs a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--stream" || arg == "--check") {
      (arg == "--stream" ? a.stream : a.check) = true;
      continue;
    }
    if (arg != "--url" && arg != "--requests" && arg != "--concurrency" && arg != "--model" && arg != "--provider" &&
        arg != "--fallback-url" && arg != "--timeout-ms" && arg != "--deadline-ms") {
      std::fprintf(stderr, "%s: unknown option %s\n", program, arg.c_str());
      return std::nullopt;
    }
    if (!(v = value())) {
      std::fprintf(stderr, "%s: %s needs a value\n", program, arg.c_str());
      return std::nullopt;
    }
    if (arg == "--url") a.url = v;
    else if (arg == "--requests") a.requests = std::atol(v);
    else if (arg == "--concurrency") a.concurrency = std::atol(v);
    else if (arg == "--fallback-url") a.fallback_url = v;
    else if (arg == "--timeout-ms") a.timeout_ms = std::atol(v);
    else if (arg == "--deadline-ms") a.deadline_ms = std::atol(v);
    else if (arg == "--provider") a.provider = v;
    else a.model = v;
  }
  if (a.url.empty() || a.requests < 1 || a.concurrency < 1 || (a.provider != "openai" && a.provider != "anthropic")) {
    std::fprintf(stderr,
                 "usage: %s --url URL --requests N --concurrency C [--stream] [--model M]\n"
                 "          [--provider openai|anthropic] [--check]\n"
                 "          [--fallback-url URL] [--timeout-ms MS] [--deadline-ms MS]\n"
                 "  URL is the API root, e.g. http://127.0.0.1:8089/v1\n"
                 "  --check prints what the first reply parsed to on stderr\n",
                 program);
    return std::nullopt;
  }
  while (!a.url.empty() && a.url.back() == '/') a.url.pop_back();
  return a;
}

// The same small agent-like prompt for both clients.
inline constexpr const char* kPrompt = "Summarise the following note in one sentence: the build is green.";

struct BenchReport {
  long requests = 0, ok = 0, errors = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;
  long upstream_attempts = 0;
};

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(index, v.size() - 1)];
}

inline void print_report(const BenchReport& r) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "{\"requests\": %ld, \"ok\": %ld, \"errors\": %ld, \"seconds\": %.4f, \"rps\": %.1f, \"p50_ms\": %.3f, "
      "\"p99_ms\": %.3f, \"peak_rss_kb\": %ld, \"upstream_attempts\": %ld}\n",
      r.requests, r.ok, r.errors, r.seconds, r.seconds > 0 ? static_cast<double>(r.requests) / r.seconds : 0.0,
      percentile(r.latencies_ms, 0.50), percentile(r.latencies_ms, 0.99), usage.ru_maxrss, r.upstream_attempts);
}

}  // namespace llmguard::bench

#endif  // LLMGUARD_BENCH_BENCH_COMMON_H_
