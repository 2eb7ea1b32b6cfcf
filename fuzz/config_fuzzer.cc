// libFuzzer target: arbitrary bytes as a config file. What parses must also
// be safe to build a client from (Client::create validates, resolves targets
// and sizes limiters and budgets) and to redact with. Any crash, sanitizer
// report (an overflowing duration conversion, say), hang or runaway
// allocation is a bug.
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "llmguard/config.h"
#include "secrets.h"

namespace {

// No thread, no socket: requests and timers are accepted and never run.
// Client::create only stores the transport; nothing here sends a request.
class NullTransport final : public llmguard::Transport {
 public:
  RequestId send(llmguard::HttpRequest, llmguard::HttpHandlers) override { return ++next_; }
  void cancel(RequestId) override {}
  TimerId schedule(std::chrono::nanoseconds, std::function<void()>) override { return ++next_; }
  bool cancel_timer(TimerId) override { return false; }
  bool in_loop_thread() const override { return false; }

 private:
  std::uint64_t next_ = 0;
};

// What the parser promises (docs/guide.md): every number it lets through is
// in its range, so the engine's duration and rate arithmetic cannot overflow.
void check_ranges(const llmguard::ClientOptions& o) {
  using std::chrono::milliseconds;
  constexpr milliseconds kWeek{7 * 86'400'000LL};
  auto duration_ok = [&](milliseconds d) { return d.count() >= 0 && d <= kWeek; };
  auto price_ok = [](double p) { return std::isfinite(p) && p >= 0 && p <= 1e6; };
  bool ok = duration_ok(o.retry.base_delay) && duration_ok(o.retry.max_delay) && duration_ok(o.retry.max_retry_after) &&
            duration_ok(o.timeouts.connect) && duration_ok(o.timeouts.total) && duration_ok(o.timeouts.idle) &&
            duration_ok(o.timeouts.ttft) && (!o.deadline || duration_ok(*o.deadline)) && o.retry.max_attempts >= 1 &&
            o.retry.max_attempts <= 100;
  for (const auto& t : o.targets) {
    ok = ok && (!t.context_window || (*t.context_window >= 1 && *t.context_window <= 1'000'000'000));
    if (t.price) ok = ok && price_ok(t.price->input_per_mtok) && price_ok(t.price->output_per_mtok);
    if (t.price && t.price->cached_input_per_mtok) ok = ok && price_ok(*t.price->cached_input_per_mtok);
    const auto& l = t.limits;
    ok = ok && (!l.requests_per_minute || (std::isfinite(*l.requests_per_minute) && *l.requests_per_minute > 0));
    ok = ok && (!l.max_concurrency || *l.max_concurrency >= 1) && (!l.tokens_per_minute || *l.tokens_per_minute >= 1);
  }
  for (const auto& b : o.budgets) {
    ok = ok && (!b.usd || (std::isfinite(*b.usd) && *b.usd >= 0)) && (!b.tokens || *b.tokens >= 0);
  }
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto options = llmguard::parse_client_options(text);
  if (!options.ok()) return 0;
  check_ranges(*options);

  const llmguard::internal::Redactor redactor(llmguard::internal::credentials_of(*options));
  (void)redactor.redact(text);
  llmguard::internal::StreamRedactor stream(redactor);
  for (std::size_t at = 0; at < text.size(); at += 7) (void)stream.feed(text.substr(at, 7));
  (void)stream.finish();

  // Opening a path the input names could block (a FIFO) or touch devices.
  options->ca_file.clear();
  options->transport = std::make_shared<NullTransport>();
  auto client = llmguard::Client::create(std::move(*options));
  if (client.ok()) {
    (void)(*client)->health();
    (void)(*client)->budgets();
    (void)(*client)->usage();
  }
  return 0;
}
