#include "state/redis_state.h"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <random>
#include <utility>

#include "ledger.h"

namespace llmguard::internal {

namespace {

bool has_limits(const Target::Limits& l) { return l.max_concurrency || l.requests_per_minute || l.tokens_per_minute; }

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kFirstProbe{500}, kLongestProbe{5000};
// Jobs sent in one round trip at most: a bound on the reply a slow Redis keeps everyone waiting for.
constexpr std::size_t kLongestPipeline = 64;

// How long a period's budget key outlives its last write: past the period's
// end, so that an operator still sees the last one; forever for kTotal.
std::chrono::seconds kept_for(Budget::Period period) {
  using std::chrono::hours;
  switch (period) {
    case Budget::Period::kTotal:
      return std::chrono::seconds(0);
    case Budget::Period::kHour:
      return hours(2);
    case Budget::Period::kDay:
      return hours(48);
    case Budget::Period::kMonth:
      return hours(24 * 62);
  }
  return std::chrono::seconds(0);
}

std::string process_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device entropy;
  const std::uint64_t nonce = (static_cast<std::uint64_t>(entropy()) << 32) | entropy();
  return fmt::format("{}:{}:{:016x}", host, getpid(), nonce);
}

std::vector<std::string_view> fields(std::string_view payload) {
  std::vector<std::string_view> out;
  for (std::size_t at = 0;;) {
    const std::size_t sep = payload.find('\x1f', at);
    out.push_back(payload.substr(at, sep == std::string_view::npos ? std::string_view::npos : sep - at));
    if (sep == std::string_view::npos) return out;
    at = sep + 1;
  }
}

std::string budget_scope(const Budget& b) {
  return b.caller_tag.empty() ? std::string("client") : fmt::format("caller \"{}\"", b.caller_tag);
}

}  // namespace

Result<std::unique_ptr<RedisFleet>> RedisFleet::create(const SharedState& options, const std::vector<Target>& targets,
                                                       const std::vector<Budget>& budgets,
                                                       const RetryBudget& retry_budget,
                                                       std::shared_ptr<Transport> transport, Hooks hooks) {
  auto endpoint = parse_redis_url(options.redis_url);
  if (!endpoint.ok()) return std::move(endpoint).error();
  if (endpoint->password.empty() && !options.password_env.empty()) {
    const char* password = std::getenv(options.password_env.c_str());
    if (!password || !*password) {
      return make_error(ErrorCategory::kBadRequest,
                        fmt::format("shared_state.password_env names {}, which is not set", options.password_env));
    }
    endpoint->password = password;
  }
  if (options.name_space.empty() || options.name_space.find_first_of("{}") != std::string::npos) {
    return make_error(ErrorCategory::kBadRequest,
                      "shared_state.namespace must be a non-empty name without braces (it is the keys' hash tag)");
  }
  if (options.lease_ttl < milliseconds(100) || options.lease_ttl > std::chrono::hours(24)) {
    return make_error(ErrorCategory::kBadRequest, "shared_state.lease_ttl_ms must be from 100 ms to 24 hours");
  }
  if (options.command_timeout < milliseconds(1) || options.command_timeout > std::chrono::minutes(1)) {
    return make_error(ErrorCategory::kBadRequest, "shared_state.command_timeout_ms must be from 1 ms to a minute");
  }
  return std::unique_ptr<RedisFleet>(new RedisFleet(options, std::move(*endpoint), targets, budgets, retry_budget,
                                                    std::move(transport), std::move(hooks)));
}

RedisFleet::RedisFleet(const SharedState& options, RedisEndpoint endpoint, const std::vector<Target>& targets,
                       const std::vector<Budget>& budgets, const RetryBudget& retry_budget,
                       std::shared_ptr<Transport> transport, Hooks hooks)
    : options_(options),
      budgets_(budgets),
      retry_budget_(retry_budget),
      transport_(std::move(transport)),
      hooks_(std::move(hooks)),
      origin_(process_name()),
      redis_(std::move(endpoint), options.command_timeout),
      store_(redis_, options.name_space) {
  for (const Target& t : targets) {
    target_names_.push_back(t.name);
    limits_.push_back(t.limits);
  }
  next_renewal_ = Clock::now() + options_.lease_ttl / 3;
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  // Listening first, then reading what is open: news in between is not lost
  // (a reset read late is still told on the channel).
  listener_ = std::thread([this] { listen(); });
  {
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, 2 * options_.command_timeout, [this] { return first_subscribe_done_; });
  }
  // Before the worker starts, on its connection.
  if (auto open = store_.open_breakers(); open.ok()) {
    for (const auto& b : *open) {
      if (auto t = target_index(b.target)) {
        open_at_start_.push_back({*t, parse_error_category(b.reason).value_or(ErrorCategory::kCircuitOpen), b.left});
      }
    }
  } else {
    went_away(open.error());
  }
  worker_ = std::thread([this] { work(); });
}

RedisFleet::~RedisFleet() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (stop_fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
  }
  worker_.join();
  listener_.join();
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

bool RedisFleet::involved(std::size_t target, bool budgeted) const { return budgeted || has_limits(limits_[target]); }

void RedisFleet::post(std::function<void()> fn) const { transport_->post(std::move(fn)); }

void RedisFleet::enqueue(Job job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void RedisFleet::admit(AdmitRequest request, std::function<void(Admission)> done) {
  if (away_.load(std::memory_order_acquire)) {
    // Known to be away: no round trip (and no timeout) per attempt until a probe finds it back.
    done(unavailable(
        make_error(ErrorCategory::kConnection, fmt::format("redis {} is unreachable", redis_.endpoint().where()))));
    return;
  }
  enqueue(AdmitJob{std::move(request), next_lease_.fetch_add(1), std::move(done)});
}

void RedisFleet::finish(std::uint64_t lease, std::vector<Spent> spent) {
  if (lease == 0) return;
  enqueue(FinishJob{lease, std::move(spent)});
}

void RedisFleet::breaker_opened(std::size_t target, ErrorCategory why, milliseconds open_for) {
  enqueue(BreakerJob{target, std::string(to_string(why)), open_for});
}

void RedisFleet::reset(std::size_t target) { enqueue(BreakerJob{target, "", milliseconds(0)}); }

Fleet::Stats RedisFleet::stats() const {
  return {.reachable = !away_.load(std::memory_order_acquire),
          .round_trips = round_trips_.load(std::memory_order_relaxed),
          .scripts = scripts_.load(std::memory_order_relaxed)};
}

std::optional<std::size_t> RedisFleet::target_index(std::string_view name) const {
  const auto t = std::find(target_names_.begin(), target_names_.end(), name);
  if (t == target_names_.end()) return std::nullopt;
  return static_cast<std::size_t>(t - target_names_.begin());
}

std::string RedisFleet::lease_name(std::uint64_t lease) const { return fmt::format("{}:{}", origin_, lease); }

Fleet::Admission RedisFleet::unavailable(const Error& error) const {
  if (options_.on_unavailable == SharedState::OnUnavailable::kLocal) return {};  // go, on this process's own word
  Error e =
      make_error(ErrorCategory::kConnection,
                 fmt::format("shared state unavailable: {}; shared_state.on_unavailable is \"fail\"", error.message));
  e.hint = "start Redis (or fix shared_state.redis_url), or set on_unavailable to \"local\" to go on without it";
  return {.verdict = Admission::Verdict::kSkip, .refusal = std::move(e)};
}

void RedisFleet::went_away(const Error& error) {
  probe_backoff_ = kFirstProbe;
  next_probe_ = Clock::now() + probe_backoff_;
  if (away_.exchange(true, std::memory_order_acq_rel)) return;
  const bool local = options_.on_unavailable == SharedState::OnUnavailable::kLocal;
  std::string message =
      fmt::format("shared state unavailable: {}; {}", error.message,
                  local ? "going on with this process's own budgets, limits and breakers until it is back"
                        : "calls fail until it is back");
  if (hooks_.event) {
    post([event = hooks_.event, message = std::move(message)] {
      event({.kind = Event::Kind::kSharedStateUnavailable, .message = message});
    });
  }
}

void RedisFleet::probe() {
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  redis_.set_timeout(options_.command_timeout);
  scripts_.fetch_add(1, std::memory_order_relaxed);
  if (!store_.probe(origin_).ok()) {
    probe_backoff_ = std::min(probe_backoff_ * 2, kLongestProbe);
    next_probe_ = Clock::now() + probe_backoff_;
    return;
  }
  away_.store(false, std::memory_order_release);
  if (hooks_.event) {
    post([event = hooks_.event, where = redis_.endpoint().where()] {
      const std::string message = fmt::format("shared state at redis {} is back", where);
      event({.kind = Event::Kind::kSharedStateRestored, .message = message});
    });
  }
}

void RedisFleet::work() {
  std::unique_lock lock(mu_);
  std::vector<Job> batch;
  while (true) {
    const auto due = away_.load(std::memory_order_acquire) ? std::min(next_renewal_, next_probe_) : next_renewal_;
    wake_.wait_until(lock, due, [this] { return stopping_ || !jobs_.empty(); });
    if (!jobs_.empty()) {
      // All that queued up while the last round trip was out go in the next one.
      batch.clear();
      while (!jobs_.empty() && batch.size() < kLongestPipeline) {
        batch.push_back(std::move(jobs_.front()));
        jobs_.pop_front();
      }
      lock.unlock();
      run(batch);
      lock.lock();
      continue;
    }
    // Leases still held when the client goes are left to expire: the calls
    // holding them were cancelled and settled through finish() already.
    if (stopping_) return;
    lock.unlock();
    const auto now = Clock::now();
    if (away_.load(std::memory_order_acquire) && now >= next_probe_) probe();
    if (now >= next_renewal_) {
      next_renewal_ = now + options_.lease_ttl / 3;
      if (!away_.load(std::memory_order_acquire)) renew();
    }
    lock.lock();
  }
}

void RedisFleet::run(std::vector<Job>& batch) {
  // Jobs given the whole command_timeout share a round trip; one whose call
  // is nearer its deadline goes alone, so that its shorter wait is its own.
  std::vector<ScriptCall> calls;
  std::vector<std::size_t> senders;
  auto send = [&](milliseconds timeout) {
    if (calls.empty()) return;
    redis_.set_timeout(timeout);
    round_trips_.fetch_add(1, std::memory_order_relaxed);
    scripts_.fetch_add(calls.size(), std::memory_order_relaxed);
    std::vector<Result<RedisReply>> replies = run_scripts(redis_, calls);
    for (std::size_t k = 0; k < senders.size(); ++k) {
      std::visit([&](auto& job) { complete(job, std::move(replies[k]), timeout); }, batch[senders[k]]);
    }
    calls.clear();
    senders.clear();
  };
  std::vector<std::pair<std::size_t, Outgoing>> hurried;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Outgoing out = std::visit([this](auto& job) { return prepare(job); }, batch[i]);
    if (!out.call) continue;
    if (out.timeout < options_.command_timeout) {
      hurried.emplace_back(i, std::move(out));
      continue;
    }
    calls.push_back(std::move(*out.call));
    senders.push_back(i);
  }
  send(options_.command_timeout);
  for (auto& [i, out] : hurried) {
    calls.push_back(std::move(*out.call));
    senders.push_back(i);
    send(out.timeout);
  }
}

void RedisFleet::failed(const Error& error, milliseconds timeout) {
  if (timeout >= options_.command_timeout) went_away(error);
}

RedisFleet::Outgoing RedisFleet::prepare(AdmitJob& job) {
  const AdmitRequest& r = job.request;
  if (away_.load(std::memory_order_acquire)) {
    post([done = std::move(job.done),
          a = unavailable(make_error(ErrorCategory::kConnection,
                                     fmt::format("redis {} is unreachable", redis_.endpoint().where())))]() mutable {
      done(std::move(a));
    });
    return {};
  }
  milliseconds timeout = options_.command_timeout;
  if (r.deadline) {
    timeout = std::min(timeout, std::chrono::ceil<milliseconds>(*r.deadline - Clock::now()));
    timeout = std::max(timeout, milliseconds(1));
  }
  std::vector<RedisStore::Hold> holds;
  for (const Hold& h : r.holds) {
    const Budget& b = budgets_[h.budget];
    holds.push_back({.key = store_.budget_key(b.caller_tag, b.period, h.period),
                     .limit_usd = b.usd,
                     .limit_tokens = b.tokens,
                     .usd = h.usd,
                     .tokens = h.tokens,
                     .keep = kept_for(b.period)});
    job.held.hold_keys.push_back(holds.back().key);
    job.held.hold_keep.push_back(holds.back().keep);
  }
  if (limits_[r.target].max_concurrency) job.held.slot_target = target_names_[r.target];
  // The retry budget is shared for a target with limits: every attempt to it
  // is admitted here, so the fleet's requests and retries are all counted,
  // at no extra cost. Elsewhere it stays the process's (no traffic for that).
  const bool shares_retries = has_limits(limits_[r.target]);
  return {.call = store_.admit_call({.target = target_names_[r.target],
                                     .lease = lease_name(job.lease),
                                     .lease_ttl = options_.lease_ttl,
                                     .limits = limits_[r.target],
                                     .tokens = r.tokens,
                                     .holds = holds,
                                     .retry_budget = shares_retries ? std::optional(retry_budget_) : std::nullopt,
                                     .first_on_target = r.first_on_target,
                                     .retry = r.retry}),
          .timeout = timeout};
}

void RedisFleet::complete(AdmitJob& job, Result<RedisReply> reply, milliseconds timeout) {
  const AdmitRequest& r = job.request;
  auto answer = [this, &job](Admission admission) {
    post([done = std::move(job.done), admission = std::move(admission)]() mutable { done(std::move(admission)); });
  };
  auto verdict = store_.verdict_of(std::move(reply));
  if (!verdict.ok()) {
    failed(verdict.error(), timeout);
    answer(unavailable(verdict.error()));
    return;
  }
  using Kind = RedisStore::Verdict::Kind;
  const RedisStore::Verdict& v = *verdict;
  Admission a;
  switch (v.kind) {
    case Kind::kGo:
      held_.emplace(job.lease, std::move(job.held));
      a.lease = job.lease;
      break;
    case Kind::kBreakerOpen: {
      const ErrorCategory why = parse_error_category(v.reason).value_or(ErrorCategory::kCircuitOpen);
      a.verdict = Admission::Verdict::kSkip;
      a.refusal = make_error(ErrorCategory::kCircuitOpen,
                             fmt::format("paused fleet-wide by its circuit breaker (opened by {} in namespace \"{}\", "
                                         "{} ms left)",
                                         v.reason, options_.name_space, v.wait.count()));
      // This process learns it too: its next calls skip the target without asking.
      if (hooks_.breaker_opened) {
        post([hook = hooks_.breaker_opened, t = r.target, why, left = v.wait] { hook(t, why, left); });
      }
      break;
    }
    case Kind::kSlotsTaken:
    case Kind::kBucketEmpty:
      a.verdict = Admission::Verdict::kWait;
      a.wait = v.wait;
      a.slots_taken = v.kind == Kind::kSlotsTaken;
      break;
    case Kind::kRetryBudgetSpent:
      a.verdict = Admission::Verdict::kSkip;
      a.retry_refused = fmt::format(
          "the fleet's retry budget for this target is spent: {} retries for {} requests "
          "in the last {} s across namespace \"{}\" (at most {:g} of the requests plus {})",
          v.retries, v.requests, std::chrono::duration_cast<std::chrono::seconds>(retry_budget_.window).count(),
          options_.name_space, retry_budget_.ratio, retry_budget_.min_retries);
      break;
    case Kind::kBudgetRefused: {
      const Budget& b = budgets_[r.holds[v.budget].budget];
      const Hold& h = r.holds[v.budget];
      a.verdict = Admission::Verdict::kSkip;
      a.refusal = make_error(
          ErrorCategory::kBudgetExceeded,
          b.usd && v.spent_usd + v.held_usd + h.usd > *b.usd + 1e-12
              ? fmt::format("the fleet's {} budget of ${:.6f} would be exceeded: ${:.6f} spent, ${:.6f} reserved "
                            "across namespace \"{}\", this attempt reserves ${:.6f}",
                            budget_scope(b), *b.usd, v.spent_usd, v.held_usd, options_.name_space, h.usd)
              : fmt::format("the fleet's {} budget of {} tokens would be exceeded: {} spent, {} reserved across "
                            "namespace \"{}\", this attempt reserves {}",
                            budget_scope(b), b.tokens.value_or(0), v.spent_tokens, v.held_tokens, options_.name_space,
                            h.tokens));
      break;
    }
  }
  answer(std::move(a));
}

RedisFleet::Outgoing RedisFleet::prepare(FinishJob& job) {
  auto it = held_.find(job.lease);
  if (it == held_.end()) return {};
  const Held held = std::move(it->second);
  held_.erase(it);
  if (away_.load(std::memory_order_acquire)) return {};  // its lease expires on the server
  std::vector<RedisStore::Settled> settled;
  for (std::size_t i = 0; i < held.hold_keys.size(); ++i) {
    const Spent spent = i < job.spent.size() ? job.spent[i] : Spent{};
    settled.push_back({.key = held.hold_keys[i], .usd = spent.usd, .tokens = spent.tokens, .keep = held.hold_keep[i]});
  }
  return {.call = store_.finish_call(lease_name(job.lease), held.slot_target, settled),
          .timeout = options_.command_timeout};
}

void RedisFleet::complete(FinishJob& /*job*/, Result<RedisReply> reply, milliseconds timeout) {
  Status done = store_.status_of(std::move(reply), "a settlement");
  if (!done.ok()) failed(done.error(), timeout);
}

RedisFleet::Outgoing RedisFleet::prepare(BreakerJob& job) {
  if (away_.load(std::memory_order_acquire)) return {};
  const std::string& target = target_names_[job.target];
  return {.call = job.why.empty() ? store_.reset_call(target, origin_)
                                  : store_.open_breaker_call(target, job.why, job.open_for, origin_),
          .timeout = options_.command_timeout};
}

void RedisFleet::complete(BreakerJob& job, Result<RedisReply> reply, milliseconds timeout) {
  Status done = store_.status_of(std::move(reply), job.why.empty() ? "a breaker reset" : "a breaker opening");
  if (!done.ok()) failed(done.error(), timeout);
}

void RedisFleet::renew() {
  if (held_.empty()) return;
  RedisStore::Renewal renewal;
  for (const auto& [lease, held] : held_) {
    renewal.leases.push_back(lease_name(lease));
    if (!held.slot_target.empty()) renewal.keys.push_back(store_.key("slots", held.slot_target));
    for (const std::string& k : held.hold_keys) renewal.keys.push_back(k + ":held");
  }
  std::sort(renewal.keys.begin(), renewal.keys.end());
  renewal.keys.erase(std::unique(renewal.keys.begin(), renewal.keys.end()), renewal.keys.end());
  redis_.set_timeout(options_.command_timeout);
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  scripts_.fetch_add(1, std::memory_order_relaxed);
  Status done = store_.renew(renewal, options_.lease_ttl);
  if (!done.ok()) went_away(done.error());
}

void RedisFleet::listen() {
  // Its own connection: a subscribed one takes no other command.
  RedisConnection channel(redis_.endpoint(), options_.command_timeout);
  RedisStore store(channel, options_.name_space);
  milliseconds retry = kFirstProbe;
  bool first = true;  // the openings before it were read at start
  auto stopped = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  while (!stopped()) {
    auto subscribed = channel.command({"SUBSCRIBE", store.events_channel()});
    if (first) {
      {
        std::lock_guard lock(mu_);
        first_subscribe_done_ = true;
      }
      wake_.notify_all();
    }
    if (!subscribed.ok() || subscribed->is_error()) {
      first = false;
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, retry, [this] { return stopping_; });
      retry = std::min(retry * 2, kLongestProbe);
      continue;
    }
    retry = kFirstProbe;
    // Openings made while this process was not listening: read again after
    // each new subscription, on a connection of its own (this one only
    // listens now).
    if (!std::exchange(first, false)) {
      RedisConnection once(redis_.endpoint(), options_.command_timeout);
      RedisStore current(once, options_.name_space);
      if (auto open = current.open_breakers(); open.ok()) {
        for (const auto& b : *open) {
          const auto t = target_index(b.target);
          if (!t || !hooks_.breaker_opened) continue;
          const ErrorCategory why = parse_error_category(b.reason).value_or(ErrorCategory::kCircuitOpen);
          post([hook = hooks_.breaker_opened, i = *t, why, left = b.left] { hook(i, why, left); });
        }
      }
    }
    while (!stopped()) {
      auto message = channel.next_message(milliseconds(1000), stop_fd_);
      if (!message.ok()) break;  // subscribe again
      if (!*message) continue;
      const RedisReply& m = **message;
      if (m.type == RedisReply::Type::kArray && m.elements.size() == 3 && m.elements[0].text == "message") {
        on_message(m.elements[2].text);
      }
    }
  }
}

void RedisFleet::on_message(std::string_view payload) {
  const auto f = fields(payload);
  if (f.size() < 2) return;
  const std::string_view kind = f[0];
  if (kind == "freed") {
    if (hooks_.slot_freed) post(hooks_.slot_freed);
    return;
  }
  if (f.size() < 3 || f[1] == origin_) return;  // this process's own news
  const auto found = target_index(f[2]);
  if (!found) return;
  const std::size_t target = *found;
  if (kind == "open" && f.size() >= 5 && hooks_.breaker_opened) {
    std::int64_t ms = 0;
    std::from_chars(f[3].data(), f[3].data() + f[3].size(), ms);
    const ErrorCategory why = parse_error_category(f[4]).value_or(ErrorCategory::kCircuitOpen);
    post([hook = hooks_.breaker_opened, target, why, left = milliseconds(ms)] { hook(target, why, left); });
  } else if (kind == "reset" && hooks_.breaker_reset) {
    post([hook = hooks_.breaker_reset, target] { hook(target); });
  }
}

}  // namespace llmguard::internal
