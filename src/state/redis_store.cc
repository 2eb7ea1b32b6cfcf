#include "state/redis_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>

#include "json_writer.h"
#include "metrics.h"

namespace llmguard::internal {

namespace {

// Shared by the scripts: the server's clock unless the caller gives one, and
// a hold given back (expired, or replaced by what was spent).
constexpr std::string_view kPrelude = R"lua(
local function now_ms(arg)
  local given = tonumber(arg)
  if given and given > 0 then return given end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function give_back(budget, lease)
  local field = 'h:' .. lease
  local held = redis.call('HGET', budget, field)
  if not held then return false end
  local usd, tokens = string.match(held, '^(%S+) (%S+)$')
  redis.call('HINCRBYFLOAT', budget, 'held_usd', -tonumber(usd))
  redis.call('HINCRBY', budget, 'held_tokens', -tonumber(tokens))
  redis.call('HDEL', budget, field)
  return true
end
local function keep(key, seconds)
  if seconds > 0 then redis.call('EXPIRE', key, seconds) end
end
)lua";

// KEYS: breaker, slots, bucket, retries, then a budget hash and its held set
// per hold. ARGV: now, lease, ttl, max_concurrency, rpm, tpm, tokens, then
// the retry budget: window seconds (0: not shared), ratio, min_retries,
// whether the attempt is a target's first (a request) or a retry; then per
// hold limit_usd, limit_tokens (empty: none), usd, tokens, keep seconds.
// The retries hash is a ring of one-second slots: s<i> (the second), r<i>
// (requests), x<i> (retries).
constexpr std::string_view kAdmit = R"lua(
local now = now_ms(ARGV[1])
local lease, ttl = ARGV[2], tonumber(ARGV[3])
local slots, rpm, tpm, tokens = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local window, ratio, min_retries = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local first, retry = ARGV[11] == '1', ARGV[12] == '1'
local open_left = redis.call('PTTL', KEYS[1])
if open_left > 0 then return {'open', open_left, redis.call('GET', KEYS[1]) or ''} end
local second = math.floor(now / 1000)
if window > 0 and retry then
  local fields = {}
  for i = 0, window - 1 do
    fields[#fields + 1] = 's' .. i
    fields[#fields + 1] = 'r' .. i
    fields[#fields + 1] = 'x' .. i
  end
  local ring = redis.call('HMGET', KEYS[4], unpack(fields))
  local requests, retries = 0, 0
  for i = 0, window - 1 do
    local at = tonumber(ring[3 * i + 1])
    if at and at > second - window and at <= second then
      requests = requests + (tonumber(ring[3 * i + 2]) or 0)
      retries = retries + (tonumber(ring[3 * i + 3]) or 0)
    end
  end
  if retries >= ratio * requests + min_retries then return {'retry', retries, requests} end
end
if slots > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= slots then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {'slots', math.max(1, tonumber(first[2]) - now)}
  end
end
local req, tok
if rpm > 0 or tpm > 0 then
  local b = redis.call('HMGET', KEYS[3], 'req', 'tok', 'at')
  local minutes = math.max(0, now - (tonumber(b[3]) or now)) / 60000
  local wait = 0
  if rpm > 0 then
    req = math.min(rpm, (tonumber(b[1]) or rpm) + minutes * rpm)
    if req < 1 then wait = math.max(wait, math.ceil((1 - req) / rpm * 60000)) end
  end
  if tpm > 0 then
    tok = math.min(tpm, (tonumber(b[2]) or tpm) + minutes * tpm)
    local needed = math.min(tokens, tpm)
    if tok < needed then wait = math.max(wait, math.ceil((needed - tok) / tpm * 60000)) end
  end
  if wait > 0 then return {'bucket', wait} end
end
local holds = (#KEYS - 4) / 2
for i = 1, holds do
  local budget, held = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local expired = redis.call('ZRANGEBYSCORE', held, '-inf', now)
  for _, gone in ipairs(expired) do
    if give_back(budget, gone) then redis.call('HINCRBY', budget, 'expired', 1) end
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', held, '-inf', now) end
  local s = redis.call('HMGET', budget, 'spent_usd', 'spent_tokens', 'held_usd', 'held_tokens')
  local spent_usd, spent_tokens = tonumber(s[1]) or 0, tonumber(s[2]) or 0
  local held_usd, held_tokens = math.max(0, tonumber(s[3]) or 0), math.max(0, tonumber(s[4]) or 0)
  local a = 13 + 5 * (i - 1)
  local limit_usd, limit_tokens = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local usd, want = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if (limit_usd and spent_usd + held_usd + usd > limit_usd + 1e-12) or
     (limit_tokens and spent_tokens + held_tokens + want > limit_tokens) then
    return {'budget', i, tostring(spent_usd), tostring(held_usd), spent_tokens, held_tokens}
  end
end
if slots > 0 then
  redis.call('ZADD', KEYS[2], now + ttl, lease)
  redis.call('PEXPIRE', KEYS[2], 2 * ttl)
end
if rpm > 0 or tpm > 0 then
  if rpm > 0 then redis.call('HSET', KEYS[3], 'req', tostring(req - 1)) end
  if tpm > 0 then redis.call('HSET', KEYS[3], 'tok', tostring(tok - tokens)) end
  redis.call('HSET', KEYS[3], 'at', now)
  redis.call('PEXPIRE', KEYS[3], 120000)
end
if window > 0 and (first or retry) then
  local slot = second % window
  if tonumber(redis.call('HGET', KEYS[4], 's' .. slot)) ~= second then
    redis.call('HSET', KEYS[4], 's' .. slot, second, 'r' .. slot, 0, 'x' .. slot, 0)
  end
  if first then redis.call('HINCRBY', KEYS[4], 'r' .. slot, 1) end
  if retry then redis.call('HINCRBY', KEYS[4], 'x' .. slot, 1) end
  redis.call('PEXPIRE', KEYS[4], 2000 * window)
end
for i = 1, holds do
  local budget, held = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local a = 13 + 5 * (i - 1)
  redis.call('HINCRBYFLOAT', budget, 'held_usd', ARGV[a + 2])
  redis.call('HINCRBY', budget, 'held_tokens', ARGV[a + 3])
  redis.call('HSET', budget, 'h:' .. lease, ARGV[a + 2] .. ' ' .. ARGV[a + 3])
  redis.call('ZADD', held, now + ttl, lease)
  keep(budget, tonumber(ARGV[a + 4]))
  keep(held, tonumber(ARGV[a + 4]))
end
return {'go'}
)lua";

// KEYS: slots, then a budget hash and its held set per settled hold.
// ARGV: lease, channel, message for a freed slot, then per hold usd, tokens, keep.
constexpr std::string_view kFinish = R"lua(
local lease = ARGV[1]
if redis.call('ZREM', KEYS[1], lease) == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
for i = 1, (#KEYS - 1) / 2 do
  local budget, held = KEYS[2 * i], KEYS[2 * i + 1]
  local a = 4 + 3 * (i - 1)
  give_back(budget, lease)
  redis.call('ZREM', held, lease)
  redis.call('HINCRBYFLOAT', budget, 'spent_usd', ARGV[a])
  redis.call('HINCRBY', budget, 'spent_tokens', ARGV[a + 1])
  keep(budget, tonumber(ARGV[a + 2]))
end
return 1
)lua";

// KEYS: slot and held sets. ARGV: now, ttl, leases.
constexpr std::string_view kRenew = R"lua(
local now, ttl = now_ms(ARGV[1]), tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  for i = 3, #ARGV do redis.call('ZADD', key, 'XX', now + ttl, ARGV[i]) end
  local left = redis.call('PTTL', key)
  if left >= 0 and left < 2 * ttl then redis.call('PEXPIRE', key, 2 * ttl) end
end
return 1
)lua";

// KEYS: breaker. ARGV: category, ms, channel, message.
constexpr std::string_view kOpenBreaker = R"lua(
local ms = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], ARGV[1], 'PX', ms) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
)lua";

// KEYS: the probe key. ARGV: who asks. A write, so that a server that
// answers but cannot write (out of memory, a read-only replica) fails it.
constexpr std::string_view kProbe = R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000)
return 1
)lua";

// KEYS: breaker. ARGV: channel, message.
constexpr std::string_view kReset = R"lua(
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
)lua";

std::string with_prelude(std::string_view body) { return std::string(kPrelude) + std::string(body); }
// Built once each: the SHA1 is what EVALSHA sends.
const RedisScript& admit_script() {
  static const RedisScript script(with_prelude(kAdmit));
  return script;
}
const RedisScript& finish_script() {
  static const RedisScript script(with_prelude(kFinish));
  return script;
}
const RedisScript& renew_script() {
  static const RedisScript script(with_prelude(kRenew));
  return script;
}
const RedisScript& open_breaker_script() {
  static const RedisScript script(with_prelude(kOpenBreaker));
  return script;
}
const RedisScript& probe_script() {
  static const RedisScript script(with_prelude(kProbe));
  return script;
}
const RedisScript& reset_script() {
  static const RedisScript script(with_prelude(kReset));
  return script;
}

std::string number_text(double d) { return fmt::format("{:.17g}", d); }

double as_double(const RedisReply& r) {
  double d = 0;
  if (r.type == RedisReply::Type::kInteger) return static_cast<double>(r.integer);
  std::from_chars(r.text.data(), r.text.data() + r.text.size(), d);
  return d;
}

std::int64_t as_int(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  return static_cast<std::int64_t>(as_double(r));
}

// A reply from a script that ran: an error reply (OOM, READONLY, a script
// error) is a kConnection error that names Redis, like a lost connection.
Result<RedisReply> checked(Result<RedisReply> reply, const RedisConnection& redis, std::string_view what) {
  if (!reply.ok()) return reply;
  if (reply->is_error()) {
    return make_error(ErrorCategory::kConnection,
                      fmt::format("redis {} refused {}: {}", redis.endpoint().where(), what, reply->text));
  }
  return reply;
}

}  // namespace

RedisStore::RedisStore(RedisConnection& redis, std::string_view ns)
    : redis_(redis),
      namespace_(ns),
      prefix_(fmt::format("llmguard:{{{}}}:", ns)),
      events_channel_(prefix_ + "events") {}

std::string RedisStore::key(std::string_view kind, std::string_view name) const {
  return fmt::format("{}{}:{}", prefix_, kind, name);
}

std::string RedisStore::budget_key(std::string_view caller_tag, Budget::Period period, std::int64_t id) const {
  // The tag's length first: a tag may hold ':' itself.
  return fmt::format("{}budget:{}:{}:{}:{}", prefix_, caller_tag.size(), caller_tag, period_name(period), id);
}

ScriptCall RedisStore::admit_call(const AdmitArgs& a) const {
  ScriptCall call{
      .script = &admit_script(),
      .keys = {key("breaker", a.target), key("slots", a.target), key("bucket", a.target), key("retries", a.target)},
      .args = {std::to_string(a.now_ms), std::string(a.lease), std::to_string(a.lease_ttl.count()),
               std::to_string(a.limits.max_concurrency.value_or(0)),
               number_text(a.limits.requests_per_minute.value_or(0)),
               std::to_string(a.limits.tokens_per_minute.value_or(0)), std::to_string(a.tokens)}};
  const std::int64_t window_s =
      a.retry_budget ? std::clamp<std::int64_t>(
                           std::chrono::duration_cast<std::chrono::seconds>(a.retry_budget->window).count(), 1, 60)
                     : 0;
  call.args.push_back(std::to_string(window_s));
  call.args.push_back(number_text(a.retry_budget ? a.retry_budget->ratio : 0));
  call.args.push_back(std::to_string(a.retry_budget ? a.retry_budget->min_retries : 0));
  call.args.push_back(a.first_on_target ? "1" : "0");
  call.args.push_back(a.retry ? "1" : "0");
  for (const Hold& h : a.holds) {
    call.keys.push_back(h.key);
    call.keys.push_back(h.key + ":held");
    call.args.push_back(h.limit_usd ? number_text(*h.limit_usd) : "");
    call.args.push_back(h.limit_tokens ? std::to_string(*h.limit_tokens) : "");
    call.args.push_back(number_text(h.usd));
    call.args.push_back(std::to_string(h.tokens));
    call.args.push_back(std::to_string(h.keep.count()));
  }
  return call;
}

Result<RedisStore::Verdict> RedisStore::admit(const AdmitArgs& args) {
  const ScriptCall call = admit_call(args);
  return verdict_of(std::move(run_scripts(redis_, std::span(&call, 1)).front()));
}

Result<RedisStore::Verdict> RedisStore::verdict_of(Result<RedisReply> answer) const {
  auto reply = checked(std::move(answer), redis_, "an admission");
  if (!reply.ok()) return std::move(reply).error();
  const auto& e = reply->elements;
  if (reply->type != RedisReply::Type::kArray || e.empty()) {
    return make_error(ErrorCategory::kConnection, fmt::format("redis {} answered an admission with an unexpected reply",
                                                              redis_.endpoint().where()));
  }
  Verdict v;
  const std::string_view kind = e[0].text;
  using std::chrono::milliseconds;
  if (kind == "go") return v;
  if (kind == "open" && e.size() >= 3) {
    v.kind = Verdict::Kind::kBreakerOpen;
    v.wait = milliseconds(as_int(e[1]));
    v.reason = e[2].text;
  } else if (kind == "slots" && e.size() >= 2) {
    v.kind = Verdict::Kind::kSlotsTaken;
    v.wait = milliseconds(as_int(e[1]));
  } else if (kind == "bucket" && e.size() >= 2) {
    v.kind = Verdict::Kind::kBucketEmpty;
    v.wait = milliseconds(as_int(e[1]));
  } else if (kind == "retry" && e.size() >= 3) {
    v.kind = Verdict::Kind::kRetryBudgetSpent;
    v.retries = as_int(e[1]);
    v.requests = as_int(e[2]);
  } else if (kind == "budget" && e.size() >= 6) {
    v.kind = Verdict::Kind::kBudgetRefused;
    v.budget = static_cast<std::size_t>(std::max<std::int64_t>(1, as_int(e[1])) - 1);
    v.spent_usd = as_double(e[2]);
    v.held_usd = as_double(e[3]);
    v.spent_tokens = as_int(e[4]);
    v.held_tokens = as_int(e[5]);
  } else {
    return make_error(ErrorCategory::kConnection, fmt::format("redis {} answered an admission with an unexpected reply",
                                                              redis_.endpoint().where()));
  }
  return v;
}

ScriptCall RedisStore::finish_call(std::string_view lease, std::string_view slot_target,
                                   std::span<const Settled> spent) const {
  ScriptCall call{.script = &finish_script(),
                  .keys = {key("slots", slot_target.empty() ? std::string_view("-") : slot_target)},
                  .args = {std::string(lease), events_channel_, fmt::format("freed\x1f{}", slot_target)}};
  for (const Settled& s : spent) {
    call.keys.emplace_back(s.key);
    call.keys.push_back(std::string(s.key) + ":held");
    call.args.push_back(number_text(s.usd));
    call.args.push_back(std::to_string(s.tokens));
    call.args.push_back(std::to_string(s.keep.count()));
  }
  return call;
}

Status RedisStore::finish(std::string_view lease, std::string_view slot_target, std::span<const Settled> spent) {
  const ScriptCall call = finish_call(lease, slot_target, spent);
  return status_of(std::move(run_scripts(redis_, std::span(&call, 1)).front()), "a settlement");
}

Status RedisStore::status_of(Result<RedisReply> answer, std::string_view what) const {
  auto reply = checked(std::move(answer), redis_, what);
  if (!reply.ok()) return std::move(reply).error();
  return ok_status();
}

Status RedisStore::renew(const Renewal& r, std::chrono::milliseconds lease_ttl, std::int64_t now_ms) {
  if (r.keys.empty() || r.leases.empty()) return ok_status();
  std::vector<std::string> args = {std::to_string(now_ms), std::to_string(lease_ttl.count())};
  args.insert(args.end(), r.leases.begin(), r.leases.end());
  auto reply = checked(renew_script().run(redis_, r.keys, args), redis_, "a lease renewal");
  if (!reply.ok()) return std::move(reply).error();
  return ok_status();
}

ScriptCall RedisStore::open_breaker_call(std::string_view target, std::string_view why,
                                         std::chrono::milliseconds open_for, std::string_view origin) const {
  const std::string ms = std::to_string(std::max<std::int64_t>(1, open_for.count()));
  return {.script = &open_breaker_script(),
          .keys = {key("breaker", target)},
          .args = {std::string(why), ms, events_channel_,
                   fmt::format("open\x1f{}\x1f{}\x1f{}\x1f{}", origin, target, ms, why)}};
}

Status RedisStore::open_breaker(std::string_view target, std::string_view why, std::chrono::milliseconds open_for,
                                std::string_view origin) {
  const ScriptCall call = open_breaker_call(target, why, open_for, origin);
  return status_of(std::move(run_scripts(redis_, std::span(&call, 1)).front()), "a breaker opening");
}

ScriptCall RedisStore::reset_call(std::string_view target, std::string_view origin) const {
  return {.script = &reset_script(),
          .keys = {key("breaker", target)},
          .args = {events_channel_, fmt::format("reset\x1f{}\x1f{}", origin, target)}};
}

Status RedisStore::probe(std::string_view origin) {
  const ScriptCall call{.script = &probe_script(), .keys = {key("probe", "last")}, .args = {std::string(origin)}};
  return status_of(std::move(run_scripts(redis_, std::span(&call, 1)).front()), "a probe");
}

Status RedisStore::reset_target(std::string_view target, std::string_view origin) {
  const ScriptCall call = reset_call(target, origin);
  return status_of(std::move(run_scripts(redis_, std::span(&call, 1)).front()), "a breaker reset");
}

Result<std::vector<std::string>> RedisStore::keys_matching(std::string_view pattern) {
  std::vector<std::string> out;
  std::string cursor = "0";
  do {
    auto reply = checked(redis_.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}), redis_, "a SCAN");
    if (!reply.ok()) return std::move(reply).error();
    if (reply->elements.size() != 2) break;
    cursor = reply->elements[0].text;
    for (const RedisReply& k : reply->elements[1].elements) out.push_back(k.text);
  } while (cursor != "0");
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<RedisStore::OpenBreaker>> RedisStore::open_breakers() {
  auto keys = keys_matching(prefix_ + "breaker:*");
  if (!keys.ok()) return std::move(keys).error();
  std::vector<OpenBreaker> out;
  const std::size_t name_at = prefix_.size() + std::string_view("breaker:").size();
  for (const std::string& k : *keys) {
    auto left = checked(redis_.command({"PTTL", k}), redis_, "a PTTL");
    if (!left.ok()) return std::move(left).error();
    auto why = checked(redis_.command({"GET", k}), redis_, "a GET");
    if (!why.ok()) return std::move(why).error();
    if (left->integer <= 0) continue;
    out.push_back({k.substr(name_at), why->text, std::chrono::milliseconds(left->integer)});
  }
  return out;
}

Result<std::string> RedisStore::snapshot_json(std::int64_t now_ms) {
  if (now_ms == 0) {
    auto t = checked(redis_.command({"TIME"}), redis_, "TIME");
    if (!t.ok()) return std::move(t).error();
    if (t->elements.size() == 2) now_ms = as_int(t->elements[0]) * 1000 + as_int(t->elements[1]) / 1000;
  }
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("namespace").string(namespace_);
  w.key("redis").string(redis_.endpoint().where());

  auto breakers = open_breakers();
  if (!breakers.ok()) return std::move(breakers).error();
  w.key("breakers").begin_array();
  for (const OpenBreaker& b : *breakers) {
    w.begin_object().key("target").string(b.target).key("opened_by").string(b.reason);
    w.key("open_for_ms").number(static_cast<std::int64_t>(b.left.count())).end_object();
  }
  w.end_array();

  // Limits: slots in use and the buckets' allowances, per target.
  std::map<std::string, std::pair<std::int64_t, std::vector<std::string>>> limits;
  for (std::string_view kind : {"slots", "bucket"}) {
    auto keys = keys_matching(fmt::format("{}{}:*", prefix_, kind));
    if (!keys.ok()) return std::move(keys).error();
    const std::size_t name_at = prefix_.size() + kind.size() + 1;
    for (const std::string& k : *keys) {
      auto& entry = limits[k.substr(name_at)];
      if (kind == "slots") {
        auto n = checked(redis_.command({"ZCOUNT", k, fmt::format("({}", now_ms), "+inf"}), redis_, "a ZCOUNT");
        if (!n.ok()) return std::move(n).error();
        entry.first = n->integer;
      } else {
        auto b = checked(redis_.command({"HMGET", k, "req", "tok", "at"}), redis_, "an HMGET");
        if (!b.ok()) return std::move(b).error();
        for (const RedisReply& r : b->elements) entry.second.push_back(r.text);
      }
    }
  }
  w.key("limits").begin_array();
  for (const auto& [target, entry] : limits) {
    w.begin_object().key("target").string(target).key("in_flight").number(static_cast<std::int64_t>(entry.first));
    const auto& bucket = entry.second;
    if (bucket.size() == 3) {
      // As of the last admission; it refills continuously from there.
      if (!bucket[0].empty()) w.key("requests_allowance").number(std::stod(bucket[0]));
      if (!bucket[1].empty()) w.key("tokens_allowance").number(std::stod(bucket[1]));
      if (!bucket[2].empty()) w.key("bucket_age_ms").number(now_ms - static_cast<std::int64_t>(std::stoll(bucket[2])));
    }
    w.end_object();
  }
  w.end_array();

  auto budgets = keys_matching(prefix_ + "budget:*");
  if (!budgets.ok()) return std::move(budgets).error();
  w.key("budgets").begin_array();
  for (const std::string& k : *budgets) {
    if (k.ends_with(":held")) continue;
    // budget:<n>:<tag>:<period>:<id>
    std::string_view rest = std::string_view(k).substr(prefix_.size() + 7);
    std::size_t n = 0;
    const auto [after, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || after >= rest.data() + rest.size()) continue;
    rest.remove_prefix(static_cast<std::size_t>(after - rest.data()) + 1);
    if (rest.size() < n + 1) continue;
    const std::string_view tag = rest.substr(0, n);
    const std::string_view period = rest.substr(n + 1);
    auto h = checked(redis_.command({"HMGET", k, "spent_usd", "spent_tokens", "held_usd", "held_tokens", "expired"}),
                     redis_, "an HMGET");
    if (!h.ok()) return std::move(h).error();
    auto held =
        checked(redis_.command({"ZCOUNT", k + ":held", fmt::format("({}", now_ms), "+inf"}), redis_, "a ZCOUNT");
    if (!held.ok()) return std::move(held).error();
    if (h->elements.size() != 5) continue;
    const auto& f = h->elements;
    w.begin_object().key("caller_tag").string(tag).key("period").string(period.substr(0, period.find(':')));
    if (const std::size_t colon = period.find(':'); colon != std::string_view::npos) {
      w.key("period_id").string(period.substr(colon + 1));
    }
    w.key("spent_usd").number(as_double(f[0])).key("spent_tokens").number(as_int(f[1]));
    w.key("reserved_usd")
        .number(std::max(0.0, as_double(f[2])))
        .key("reserved_tokens")
        .number(std::max<std::int64_t>(0, as_int(f[3])));
    w.key("reservations").number(static_cast<std::int64_t>(held->integer)).key("leases_expired").number(as_int(f[4]));
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return out;
}

}  // namespace llmguard::internal
