// Time per classification over the real-error corpus (tests/corpus), with
// Google Benchmark: what the classifier costs on every failed attempt.
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "classify.h"

namespace {

struct Sample {
  int status;
  llmguard::Headers headers;
  std::string body;
  bool stream;
};

const std::vector<Sample>& corpus() {
  static const std::vector<Sample> samples = [] {
    std::vector<Sample> out;
    std::ifstream in(LLMGUARD_CORPUS_DIR "/errors.jsonl");
    simdjson::dom::parser parser;
    for (std::string line; std::getline(in, line);) {
      simdjson::dom::element e;
      if (line.empty() || parser.parse(line).get(e) != simdjson::SUCCESS) continue;
      Sample s;
      s.status = static_cast<int>(int64_t(e["status"]));
      s.body = std::string(std::string_view(e["body"]));
      s.stream = bool(e["stream"]);
      for (auto [k, v] : simdjson::dom::object(e["headers"])) {
        s.headers.emplace_back(std::string(k), std::string(std::string_view(v)));
      }
      out.push_back(std::move(s));
    }
    return out;
  }();
  return samples;
}

// One iteration classifies every corpus entry; items processed = entries.
void BM_ClassifyCorpus(benchmark::State& state) {
  const auto& samples = corpus();
  const auto now = std::chrono::system_clock::now();
  for (auto _ : state) {
    for (const Sample& s : samples) {
      auto e = llmguard::internal::classify_exchange(s.status, s.headers, s.body, s.stream, now);
      benchmark::DoNotOptimize(e);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(samples.size()));
}
BENCHMARK(BM_ClassifyCorpus);

// The issue's figure: each body timed on its own (many rounds), then the
// median over bodies, so a few multi-kilobyte HTML pages do not set it.
void BM_ClassifyMedianBody(benchmark::State& state) {
  const auto& samples = corpus();
  const auto now = std::chrono::system_clock::now();
  constexpr int kRounds = 64;
  std::vector<double> per_body(samples.size());
  for (auto _ : state) {
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const Sample& s = samples[i];
      const auto start = std::chrono::steady_clock::now();
      for (int r = 0; r < kRounds; ++r) {
        auto e = llmguard::internal::classify_exchange(s.status, s.headers, s.body, s.stream, now);
        benchmark::DoNotOptimize(e);
      }
      const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
      per_body[i] = took.count() / kRounds;
    }
  }
  std::nth_element(per_body.begin(), per_body.begin() + per_body.size() / 2, per_body.end());
  state.counters["median_ns_per_body"] = per_body[per_body.size() / 2];
  state.counters["max_ns_per_body"] = *std::max_element(per_body.begin(), per_body.end());
}
BENCHMARK(BM_ClassifyMedianBody)->Unit(benchmark::kMillisecond);

// Baseline in the same process: only parsing each body with simdjson's DOM,
// the least any classifier that reads JSON bodies pays.
void BM_JsonParseCorpus(benchmark::State& state) {
  const auto& samples = corpus();
  simdjson::dom::parser parser;
  for (auto _ : state) {
    for (const Sample& s : samples) {
      simdjson::dom::element root;
      auto error = parser.parse(s.body.data(), s.body.size(), true).get(root);
      benchmark::DoNotOptimize(error);
      benchmark::DoNotOptimize(root);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(samples.size()));
}
BENCHMARK(BM_JsonParseCorpus);

// The common case on its own: an OpenAI 429 with a body delay.
void BM_ClassifyRateLimit(benchmark::State& state) {
  const std::string body =
      R"({"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): Limit 200000, Used 199500, Requested 900. Please try again in 120ms.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})";
  const llmguard::Headers headers = {{"content-type", "application/json"},
                                     {"x-ratelimit-remaining-tokens", "0"},
                                     {"x-ratelimit-reset-tokens", "120ms"}};
  const auto now = std::chrono::system_clock::now();
  for (auto _ : state) {
    auto e = llmguard::internal::classify_exchange(429, headers, body, false, now);
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyRateLimit);

}  // namespace

BENCHMARK_MAIN();
