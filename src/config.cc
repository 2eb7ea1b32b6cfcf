#include "llmguard/config.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace llmguard {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

Error config_error(std::string message) { return make_error(ErrorCategory::kBadRequest, std::move(message)); }

// Each reader returns an error message, empty on success.
std::string read_string(element v, std::string_view where, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return fmt::format("{} must be a string", where);
  out.assign(s);
  return {};
}

// Bounds of the numeric fields. Anything beyond them is a typo or a unit
// mistake (seconds written as microseconds), and would overflow once turned
// into chrono durations or rates: every number is checked before conversion.
constexpr std::int64_t kDayMs = 86'400'000;
constexpr std::int64_t kWeekMs = 7 * kDayMs;
constexpr std::int64_t kMaxAttempts = 100;
constexpr std::int64_t kMaxContextWindow = 1'000'000'000;
constexpr double kMaxPricePerMtok = 1e6;
constexpr std::int64_t kMaxConcurrency = 1'000'000;
// Below 0.01 requests a minute the limiter's waits grow past what any call
// can wait; above 1e7 a limit means nothing.
constexpr double kMinRequestsPerMinute = 0.01;
constexpr double kMaxRequestsPerMinute = 1e7;
constexpr std::int64_t kMaxTokensPerMinute = 1'000'000'000'000;
constexpr double kMaxBudgetUsd = 1e9;
constexpr std::int64_t kMaxBudgetTokens = 1'000'000'000'000'000;

struct IntRange {
  std::int64_t min, max;
  std::string_view note;  // e.g. " (24 h)", shown after the range
};

// A whole number within `range`. 3.0 is accepted as 3; 3.5, "3", NaN and
// anything out of range are not, and no double is converted before it is
// known to fit.
std::string read_int(element v, std::string_view where, IntRange range, std::int64_t& out) {
  auto out_of_range = [&] {
    return fmt::format("{} must be between {} and {}{}", where, range.min, range.max, range.note);
  };
  std::int64_t n = 0;
  if (v.get_int64().get(n) != simdjson::SUCCESS) {
    if (v.is_uint64()) return out_of_range();  // above INT64_MAX
    double d = 0;
    if (v.get_double().get(d) != simdjson::SUCCESS) return fmt::format("{} must be a number", where);
    if (std::isfinite(d) && d != std::floor(d)) return fmt::format("{} must be a whole number", where);
    if (!std::isfinite(d) || d < static_cast<double>(range.min) || d > static_cast<double>(range.max)) {
      return out_of_range();
    }
    n = static_cast<std::int64_t>(d);
  }
  if (n < range.min || n > range.max) return out_of_range();
  out = n;
  return {};
}

std::string read_ms(element v, std::string_view where, IntRange range, std::chrono::milliseconds& out) {
  std::int64_t n = 0;
  if (auto err = read_int(v, where, range, n); !err.empty()) return err;
  out = std::chrono::milliseconds(n);
  return {};
}

// 1e6 as "1000000", not "1e+06".
std::string format_bound(double d) {
  if (d == std::floor(d) && std::fabs(d) < 1e15) return fmt::format("{}", static_cast<std::int64_t>(d));
  return fmt::format("{}", d);
}

// A finite number in [min, max].
std::string read_number(element v, std::string_view where, double min, double max, std::string_view note, double& out) {
  double d = 0;
  if (v.get_double().get(d) != simdjson::SUCCESS) return fmt::format("{} must be a number", where);
  if (!std::isfinite(d) || d < min || d > max) {
    return fmt::format("{} must be between {} and {}{}", where, format_bound(min), format_bound(max), note);
  }
  out = d;
  return {};
}

constexpr IntRange kDelayRange{0, kDayMs, " (24 h)"};
constexpr IntRange kTimeoutRange{1, kDayMs, " (24 h)"};
constexpr IntRange kDeadlineRange{1, kWeekMs, " (7 days)"};
constexpr IntRange kAttemptsRange{1, kMaxAttempts, ""};

std::string read_price_field(element v, std::string_view where, double& out) {
  return read_number(v, where, 0, kMaxPricePerMtok, " USD per million tokens", out);
}

std::string read_price(element v, std::string_view where, Price& price) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) return fmt::format("{} must be an object", where);
  for (auto [key, value] : o) {
    const std::string field = fmt::format("{}.{}", where, key);
    std::string err;
    if (key == "input_per_mtok") err = read_price_field(value, field, price.input_per_mtok);
    else if (key == "output_per_mtok") err = read_price_field(value, field, price.output_per_mtok);
    else if (key == "cached_input_per_mtok") {
      double d = 0;
      err = read_price_field(value, field, d);
      price.cached_input_per_mtok = d;
    } else {
      err = fmt::format("unknown key {}", field);
    }
    if (!err.empty()) return err;
  }
  return {};
}

// {"max_concurrency": 8, "requests_per_minute": 500, "tokens_per_minute": 200000}
std::string read_limits(element v, const std::string& where, Target::Limits& limits) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) return where + " must be an object";
  for (auto [key, value] : o) {
    const std::string field = fmt::format("{}.{}", where, key);
    std::string err;
    if (key == "requests_per_minute") {
      double rate = 0;
      err = read_number(value, field, kMinRequestsPerMinute, kMaxRequestsPerMinute, "", rate);
      if (err.empty()) limits.requests_per_minute = rate;
    } else if (key == "max_concurrency") {
      std::int64_t n = 0;
      err = read_int(value, field, {1, kMaxConcurrency, ""}, n);
      if (err.empty()) limits.max_concurrency = static_cast<int>(n);
    } else if (key == "tokens_per_minute") {
      std::int64_t n = 0;
      err = read_int(value, field, {1, kMaxTokensPerMinute, ""}, n);
      if (err.empty()) limits.tokens_per_minute = n;
    } else {
      err = fmt::format("unknown key {}", field);
    }
    if (!err.empty()) return err;
  }
  return {};
}

// A command as an array of arguments, or a string split at spaces (no
// shell: no quoting, globbing or variables).
std::string read_command(element v, std::string_view where, std::vector<std::string>& argv) {
  argv.clear();
  std::string_view line;
  if (v.get_string().get(line) == simdjson::SUCCESS) {
    for (std::size_t at = 0; at < line.size();) {
      const std::size_t end = std::min(line.find(' ', at), line.size());
      if (end > at) argv.emplace_back(line.substr(at, end - at));
      at = end + 1;
    }
  } else if (simdjson::dom::array parts; v.get_array().get(parts) == simdjson::SUCCESS) {
    for (element part : parts) {
      std::string_view arg;
      if (part.get_string().get(arg) != simdjson::SUCCESS) return fmt::format("{} must hold strings only", where);
      argv.emplace_back(arg);
    }
  } else {
    return fmt::format("{} must be a command line or an array of arguments", where);
  }
  if (argv.empty()) return fmt::format("{} is empty", where);
  return {};
}

std::string read_target(element v, std::size_t index, Target& t) {
  std::string service;  // a named service's preset, applied once the target is read
  object o;
  const std::string where = fmt::format("targets[{}]", index);
  if (v.get_object().get(o) != simdjson::SUCCESS) return fmt::format("{} must be an object", where);
  for (auto [key, value] : o) {
    const std::string field = fmt::format("{}.{}", where, key);
    std::string err;
    if (key == "name") err = read_string(value, field, t.name);
    else if (key == "model") err = read_string(value, field, t.model);
    else if (key == "base_url") err = read_string(value, field, t.base_url);
    else if (key == "api_key") err = read_string(value, field, t.api_key);
    else if (key == "api_key_env") err = read_string(value, field, t.api_key_env);
    else if (key == "api_version") err = read_string(value, field, t.api_version);
    else if (key == "project") err = read_string(value, field, t.project);
    else if (key == "location") err = read_string(value, field, t.location);
    else if (key == "api_key_command") err = read_command(value, field, t.api_key_command);
    else if (key == "api_key_command_timeout_ms") err = read_ms(value, field, kTimeoutRange, t.api_key_command_timeout);
    else if (key == "credential_ttl_ms") err = read_ms(value, field, kTimeoutRange, t.credential_ttl);
    else if (key == "region") err = read_string(value, field, t.region);
    else if (key == "provider") {
      std::string name;
      err = read_string(value, field, name);
      if (err.empty()) {
        // Any other server that speaks OpenAI's API: give base_url yourself.
        if (name == "openai-compatible") {
          t.provider = Provider::kOpenAI;
        } else if (provider_preset(name)) {
          service = std::move(name);
        } else {
          err = fmt::format(
              "{}: unknown provider \"{}\" (openai, azure, anthropic, gemini, vertex, bedrock, groq, mistral, "
              "deepseek, "
              "together, fireworks, openrouter, xai, ollama, lmstudio, llamacpp, vllm, litellm, "
              "openai-compatible)",
              field, name);
        }
      }
    } else if (key == "context_window") {
      std::int64_t n = 0;
      err = read_int(value, field, {1, kMaxContextWindow, " tokens"}, n);
      if (err.empty()) t.context_window = n;
    } else if (key == "headers") {
      object headers;
      if (value.get_object().get(headers) != simdjson::SUCCESS) {
        err = fmt::format("{} must be an object", field);
      } else {
        for (auto [hk, hv] : headers) {
          std::string hvalue;
          err = read_string(hv, fmt::format("{}.{}", field, hk), hvalue);
          if (!err.empty()) break;
          t.headers.emplace_back(std::string(hk), std::move(hvalue));
        }
      }
    } else if (key == "price") {
      Price price;
      err = read_price(value, field, price);
      t.price = price;
    } else if (key == "limits") {
      err = read_limits(value, field, t.limits);
    } else {
      err = fmt::format("unknown key {}", field);
    }
    if (!err.empty()) return err;
  }
  // A named service fills in what the target leaves out.
  if (!service.empty()) apply_preset(t, service);
  return {};
}

// [{"category": "content_filter", "action": "retry|next_target|fail", "max_attempts": 2}]
std::string read_rules(element v, std::vector<CategoryRule>& rules) {
  simdjson::dom::array list;
  if (v.get_array().get(list) != simdjson::SUCCESS) return "retry.rules must be an array";
  std::size_t i = 0;
  for (element item : list) {
    const std::string at = fmt::format("retry.rules[{}]", i++);
    object o;
    if (item.get_object().get(o) != simdjson::SUCCESS) return at + " must be an object";
    CategoryRule rule;
    bool has_category = false, has_action = false;
    for (auto [key, value] : o) {
      std::string name;
      if (key == "category") {
        if (auto err = read_string(value, at + ".category", name); !err.empty()) return err;
        auto category = parse_error_category(name);
        if (!category) return fmt::format("{}.category: no category named \"{}\"", at, name);
        rule.category = *category;
        has_category = true;
      } else if (key == "action") {
        if (auto err = read_string(value, at + ".action", name); !err.empty()) return err;
        if (name == "retry") rule.action = OnFailure::kRetry;
        else if (name == "next_target") rule.action = OnFailure::kNextTarget;
        else if (name == "fail") rule.action = OnFailure::kFail;
        else return at + ".action must be retry, next_target or fail";
        has_action = true;
      } else if (key == "max_attempts") {
        std::int64_t n = 0;
        if (auto err = read_int(value, at + ".max_attempts", kAttemptsRange, n); !err.empty()) return err;
        rule.max_attempts = static_cast<int>(n);
      } else {
        return fmt::format("unknown key {}.{}", at, key);
      }
    }
    if (!has_category || !has_action) return at + " needs a category and an action";
    rules.push_back(rule);
  }
  return {};
}

std::string read_string_list(element v, std::string_view where, std::vector<std::string>& out) {
  simdjson::dom::array list;
  if (v.get_array().get(list) != simdjson::SUCCESS) return fmt::format("{} must be an array of strings", where);
  for (element item : list) {
    std::string s;
    if (auto err = read_string(item, where, s); !err.empty())
      return fmt::format("{} must be an array of strings", where);
    out.push_back(std::move(s));
  }
  return {};
}

// [{"id": "gateway-quota", "category": "quota_exhausted", "status": 429,
//   "words": ["allowance"], "json_pointer": "/error/code", "delay_field": "/error/wait"}]
// Whether each rule makes sense is Client::create's to say; this reads shapes.
std::string read_classifier_rules(element v, std::vector<ClassifierRule>& rules) {
  simdjson::dom::array list;
  if (v.get_array().get(list) != simdjson::SUCCESS) return "classifier_rules must be an array";
  std::size_t i = 0;
  for (element item : list) {
    const std::string at = fmt::format("classifier_rules[{}]", i++);
    object o;
    if (item.get_object().get(o) != simdjson::SUCCESS) return at + " must be an object";
    ClassifierRule rule;
    bool has_category = false;
    for (auto [key, value] : o) {
      const std::string field = fmt::format("{}.{}", at, key);
      std::string err;
      if (key == "id") err = read_string(value, field, rule.id);
      else if (key == "category") {
        std::string name;
        err = read_string(value, field, name);
        auto category = parse_error_category(name);
        if (err.empty() && !category) err = fmt::format("{}: no category named \"{}\"", field, name);
        if (err.empty()) rule.category = *category;
        has_category = true;
      } else if (key == "status") {
        std::int64_t n = 0;
        err = read_int(value, field, {100, 599, ""}, n);
        if (err.empty()) rule.status = static_cast<int>(n);
      } else if (key == "words") err = read_string_list(value, field, rule.words);
      else if (key == "json_pointer") err = read_string(value, field, rule.json_pointer);
      else if (key == "header") err = read_string(value, field, rule.header);
      else if (key == "delay_field") err = read_string(value, field, rule.delay_field);
      else err = fmt::format("unknown key {}", field);
      if (!err.empty()) return err;
    }
    if (rule.id.empty() || !has_category) return at + " needs an id and a category";
    rules.push_back(std::move(rule));
  }
  return {};
}

std::string read_retry(element v, RetryPolicy& r) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) return "retry must be an object";
  for (auto [key, value] : o) {
    const std::string field = fmt::format("retry.{}", key);
    std::string err;
    if (key == "max_attempts") {
      std::int64_t n = 0;
      err = read_int(value, field, kAttemptsRange, n);
      if (err.empty()) r.max_attempts = static_cast<int>(n);
    } else if (key == "base_delay_ms") err = read_ms(value, field, kDelayRange, r.base_delay);
    else if (key == "max_delay_ms") err = read_ms(value, field, kDelayRange, r.max_delay);
    else if (key == "max_retry_after_ms") err = read_ms(value, field, kDelayRange, r.max_retry_after);
    else if (key == "jitter") {
      std::string name;
      err = read_string(value, field, name);
      if (name == "full") r.jitter = Jitter::kFull;
      else if (name == "equal") r.jitter = Jitter::kEqual;
      else if (name == "decorrelated") r.jitter = Jitter::kDecorrelated;
      else if (name == "none") r.jitter = Jitter::kNone;
      else if (err.empty()) err = "retry.jitter must be full, equal, decorrelated or none";
    } else if (key == "rules") {
      err = read_rules(value, r.rules);
    } else {
      err = fmt::format("unknown key {}", field);
    }
    if (!err.empty()) return err;
  }
  return {};
}

std::string read_timeouts(element v, Timeouts& t) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) return "timeouts must be an object";
  for (auto [key, value] : o) {
    const std::string field = fmt::format("timeouts.{}", key);
    std::string err;
    if (key == "connect_ms") err = read_ms(value, field, kTimeoutRange, t.connect);
    else if (key == "total_ms") err = read_ms(value, field, kTimeoutRange, t.total);
    else if (key == "ttft_ms") err = read_ms(value, field, kTimeoutRange, t.ttft);
    else if (key == "reasoning_ttft_ms") err = read_ms(value, field, kTimeoutRange, t.reasoning_ttft);
    else if (key == "idle_ms") err = read_ms(value, field, kTimeoutRange, t.idle);
    else err = fmt::format("unknown key {}", field);
    if (!err.empty()) return err;
  }
  return {};
}

std::string read_budget(element v, std::string_view where, Budget& b) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) return fmt::format("{} must be an object", where);
  for (auto [key, value] : o) {
    const std::string field = fmt::format("{}.{}", where, key);
    std::string err;
    if (key == "usd") {
      double usd = 0;
      err = read_number(value, field, 0, kMaxBudgetUsd, " USD", usd);
      if (err.empty()) b.usd = usd;
    } else if (key == "tokens") {
      std::int64_t n = 0;
      err = read_int(value, field, {0, kMaxBudgetTokens, ""}, n);
      if (err.empty()) b.tokens = n;
    } else if (key == "caller_tag") {
      err = read_string(value, field, b.caller_tag);
    } else if (key == "period") {
      std::string period;
      err = read_string(value, field, period);
      if (period == "total") b.period = Budget::Period::kTotal;
      else if (period == "hour") b.period = Budget::Period::kHour;
      else if (period == "day") b.period = Budget::Period::kDay;
      else if (period == "month") b.period = Budget::Period::kMonth;
      else if (err.empty()) err = fmt::format("{} must be total, hour, day or month", field);
    } else {
      err = fmt::format("unknown key {}", field);
    }
    if (!err.empty()) return err;
  }
  return {};
}

// {"redis_url": "redis://127.0.0.1:6379/0", "namespace": "fleet-a",
//  "on_unavailable": "local" | "fail", "lease_ttl_ms": 10000, ...}
std::string read_shared_state(element v, SharedState& s) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) return "shared_state must be an object";
  for (auto [key, value] : o) {
    const std::string field = fmt::format("shared_state.{}", key);
    std::string err;
    if (key == "redis_url") err = read_string(value, field, s.redis_url);
    else if (key == "password_env") err = read_string(value, field, s.password_env);
    else if (key == "namespace") err = read_string(value, field, s.name_space);
    else if (key == "lease_ttl_ms") err = read_ms(value, field, {100, kDayMs, " (24 h)"}, s.lease_ttl);
    else if (key == "command_timeout_ms") err = read_ms(value, field, {1, 60'000, " (a minute)"}, s.command_timeout);
    else if (key == "on_unavailable") {
      std::string mode;
      err = read_string(value, field, mode);
      if (mode == "local") s.on_unavailable = SharedState::OnUnavailable::kLocal;
      else if (mode == "fail") s.on_unavailable = SharedState::OnUnavailable::kFail;
      else if (err.empty()) err = "shared_state.on_unavailable must be local or fail";
    } else {
      err = fmt::format("unknown key {}", field);
    }
    if (!err.empty()) return err;
  }
  if (s.redis_url.empty()) return "shared_state.redis_url is required";
  return {};
}

}  // namespace

Result<ClientOptions> parse_client_options(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  if (auto ec = parser.parse(padded).get(root); ec != simdjson::SUCCESS) {
    return config_error(fmt::format("config is not valid JSON: {}", simdjson::error_message(ec)));
  }
  object o;
  if (root.get_object().get(o) != simdjson::SUCCESS) return config_error("config must be a JSON object");
  ClientOptions options;
  for (auto [key, value] : o) {
    std::string err;
    if (key == "targets") {
      simdjson::dom::array targets;
      if (value.get_array().get(targets) != simdjson::SUCCESS) {
        err = "targets must be an array";
      } else {
        std::size_t i = 0;
        for (element t : targets) {
          Target target;
          err = read_target(t, i++, target);
          if (!err.empty()) break;
          options.targets.push_back(std::move(target));
        }
      }
    } else if (key == "retry") err = read_retry(value, options.retry);
    else if (key == "classifier_rules") err = read_classifier_rules(value, options.classifier_rules);
    else if (key == "timeouts") err = read_timeouts(value, options.timeouts);
    else if (key == "ca_file") err = read_string(value, "ca_file", options.ca_file);
    else if (key == "verify_tls") {
      if (value.get_bool().get(options.verify_tls) != simdjson::SUCCESS) err = "verify_tls must be true or false";
    } else if (key == "restart_streams_on_failure") {
      if (value.get_bool().get(options.restart_streams_on_failure) != simdjson::SUCCESS) {
        err = "restart_streams_on_failure must be true or false";
      }
    } else if (key == "deadline_ms") {
      std::chrono::milliseconds d{0};
      err = read_ms(value, "deadline_ms", kDeadlineRange, d);
      if (err.empty()) options.deadline = d;
    } else if (key == "shared_state") {
      SharedState shared;
      err = read_shared_state(value, shared);
      if (err.empty()) options.shared_state = std::move(shared);
    } else if (key == "budget") {
      Budget budget;
      err = read_budget(value, "budget", budget);
      if (err.empty()) options.budgets.push_back(std::move(budget));
    } else if (key == "budgets") {
      simdjson::dom::array list;
      if (value.get_array().get(list) != simdjson::SUCCESS) {
        err = "budgets must be an array";
      } else {
        std::size_t i = 0;
        for (element b : list) {
          Budget budget;
          err = read_budget(b, fmt::format("budgets[{}]", i++), budget);
          if (!err.empty()) break;
          options.budgets.push_back(std::move(budget));
        }
      }
    } else {
      err = fmt::format("unknown key {}", key);
    }
    if (!err.empty()) return config_error(err);
  }
  return options;
}

Result<ClientOptions> load_client_options(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return config_error(fmt::format("cannot read config file {}", path));
  std::ostringstream text;
  text << in.rdbuf();
  auto options = parse_client_options(text.str());
  if (!options.ok()) options.error().message = fmt::format("{}: {}", path, options.error().message);
  return options;
}

}  // namespace llmguard
