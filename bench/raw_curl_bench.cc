// raw-curl-bench: the baseline for llmguard-bench. The same requests over a
// bare libcurl multi handle (keep-alive, curl_multi_poll), checking only the
// status code: what a hand-rolled client costs before any JSON work. With
// --stream it sends the streaming request and only collects the bytes; it
// does not split or parse the SSE events (llmguard-bench does both).
#include <curl/curl.h>

#include <string>
#include <vector>

#include "bench_common.h"

namespace {

struct Slot {
  CURL* easy = nullptr;
  std::string body;
  std::chrono::steady_clock::time_point started;
};

size_t collect(char* data, size_t size, size_t count, void* user) {
  static_cast<Slot*>(user)->body.append(data, size * count);
  return size * count;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = llmguard::bench::parse_bench_args(argc, argv, "raw-curl-bench");
  if (!args) return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const bool anthropic = args->provider == "anthropic";
  const std::string url = args->url + (anthropic ? "/messages" : "/chat/completions");
  std::string payload = "{\"model\":\"" + json_escape(args->model) + "\",";
  if (anthropic) payload += "\"max_tokens\":1024,";
  payload += "\"messages\":[{\"role\":\"user\",\"content\":\"" + json_escape(llmguard::bench::kPrompt) + "\"}]";
  if (!args->stream) payload += "}";
  else payload += anthropic ? ",\"stream\":true}" : ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  if (anthropic) {
    headers = curl_slist_append(headers, "x-api-key: bench-key");
    headers = curl_slist_append(headers, "anthropic-version: 2023-06-01");
  } else {
    headers = curl_slist_append(headers, "Authorization: Bearer bench-key");
  }
  headers = curl_slist_append(headers, "Expect:");

  CURLM* multi = curl_multi_init();
  std::vector<Slot> slots(static_cast<std::size_t>(std::min(args->concurrency, args->requests)));
  llmguard::bench::BenchReport report;
  report.requests = args->requests;
  long started = 0;
  auto launch = [&](Slot& s) {
    if (!s.easy) s.easy = curl_easy_init();
    s.body.clear();
    curl_easy_setopt(s.easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(s.easy, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(s.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(s.easy, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(s.easy, CURLOPT_PRIVATE, &s);
    curl_easy_setopt(s.easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s.easy, CURLOPT_TIMEOUT_MS, 120000L);
    s.started = std::chrono::steady_clock::now();
    curl_multi_add_handle(multi, s.easy);
    ++started;
  };
  const auto begin = std::chrono::steady_clock::now();
  for (auto& s : slots) launch(s);
  long finished = 0;
  while (finished < args->requests) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Slot* s = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&s));
      long status = 0;
      curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
      const CURLcode code = msg->data.result;
      curl_multi_remove_handle(multi, s->easy);
      report.latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s->started).count());
      ++report.upstream_attempts;
      (code == CURLE_OK && status == 200 ? report.ok : report.errors) += 1;
      if (args->check && finished == 0) {
        std::fprintf(stderr, "raw-curl-bench: first reply: status %ld, %zu body bytes\n", status, s->body.size());
      }
      ++finished;
      if (started < args->requests) launch(*s);
    }
    if (finished < args->requests) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  for (auto& s : slots) curl_easy_cleanup(s.easy);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  llmguard::bench::print_report(report);
  return 0;
}
