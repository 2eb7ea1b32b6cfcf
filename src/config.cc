#include "llmguard/config.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <fstream>
#include <sstream>

namespace llmguard {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

Error config_error(std::string message) {
  Error e;
  e.category = ErrorCategory::kBadRequest;
  e.message = std::move(message);
  return e;
}

// Each reader returns an error message, empty on success.
std::string read_string(element v, std::string_view where, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return fmt::format("{} must be a string", where);
  out.assign(s);
  return {};
}

std::string read_ms(element v, std::string_view where, std::chrono::milliseconds& out) {
  std::int64_t n = 0;
  if (v.get_int64().get(n) != simdjson::SUCCESS || n < 0) return fmt::format("{} must be a non-negative integer", where);
  out = std::chrono::milliseconds(n);
  return {};
}

std::string read_number(element v, std::string_view where, double& out) {
  if (v.get_double().get(out) != simdjson::SUCCESS || out < 0) return fmt::format("{} must be a non-negative number", where);
  return {};
}

std::string read_price(element v, std::string_view where, Price& price) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) return fmt::format("{} must be an object", where);
  for (auto [key, value] : o) {
    const std::string field = fmt::format("{}.{}", where, key);
    std::string err;
    if (key == "input_per_mtok") err = read_number(value, field, price.input_per_mtok);
    else if (key == "output_per_mtok") err = read_number(value, field, price.output_per_mtok);
    else if (key == "cached_input_per_mtok") {
      double d = 0;
      err = read_number(value, field, d);
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
    if (key == "requests_per_minute") {
      double rate = 0;
      if (value.get_double().get(rate) != simdjson::SUCCESS || !(rate > 0)) return field + " must be a positive number";
      limits.requests_per_minute = rate;
      continue;
    }
    std::int64_t n = 0;
    if (value.get_int64().get(n) != simdjson::SUCCESS || n < 1) return field + " must be a positive integer";
    if (key == "max_concurrency" && n <= 1'000'000) limits.max_concurrency = static_cast<int>(n);
    else if (key == "tokens_per_minute") limits.tokens_per_minute = n;
    else return fmt::format("unknown key {}", field);
  }
  return {};
}

std::string read_target(element v, std::size_t index, Target& t) {
  std::optional<ProviderPreset> preset;
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
    else if (key == "provider") {
      std::string name;
      err = read_string(value, field, name);
      if (err.empty()) {
        preset = provider_preset(name);
        // Any other server that speaks OpenAI's API: give base_url yourself.
        if (!preset && name == "openai-compatible") preset = ProviderPreset{};
        if (!preset) {
          err = fmt::format("{}: unknown provider \"{}\" (openai, azure, anthropic, gemini, groq, mistral, deepseek, "
                            "together, fireworks, openrouter, xai, ollama, lmstudio, llamacpp, vllm, litellm, "
                            "openai-compatible)", field, name);
        } else {
          t.provider = preset->provider;
        }
      }
    } else if (key == "context_window") {
      std::int64_t n = 0;
      if (value.get_int64().get(n) != simdjson::SUCCESS || n <= 0) err = fmt::format("{} must be a positive integer", field);
      else t.context_window = n;
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
  // A named service fills in what the target leaves out. (Plain "openai",
  // "anthropic" and "azure" keep their environment lookups: OPENAI_BASE_URL,
  // ANTHROPIC_BASE_URL, AZURE_OPENAI_ENDPOINT.)
  if (preset && preset->provider == Provider::kOpenAI && !preset->base_url.empty() &&
      preset->api_key_env != "OPENAI_API_KEY") {
    if (t.base_url.empty()) t.base_url = std::string(preset->base_url);
    if (t.api_key.empty() && t.api_key_env.empty()) t.api_key_env = std::string(preset->api_key_env);
  }
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
        if (value.get_int64().get(n) != simdjson::SUCCESS || n < 1 || n > 100) return at + ".max_attempts must be 1..100";
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

std::string read_retry(element v, RetryPolicy& r) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) return "retry must be an object";
  for (auto [key, value] : o) {
    const std::string field = fmt::format("retry.{}", key);
    std::string err;
    if (key == "max_attempts") {
      std::int64_t n = 0;
      if (value.get_int64().get(n) != simdjson::SUCCESS || n < 1 || n > 100) err = "retry.max_attempts must be 1..100";
      else r.max_attempts = static_cast<int>(n);
    } else if (key == "base_delay_ms") err = read_ms(value, field, r.base_delay);
    else if (key == "max_delay_ms") err = read_ms(value, field, r.max_delay);
    else if (key == "max_retry_after_ms") err = read_ms(value, field, r.max_retry_after);
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
    if (key == "connect_ms") err = read_ms(value, field, t.connect);
    else if (key == "total_ms") err = read_ms(value, field, t.total);
    else if (key == "ttft_ms") err = read_ms(value, field, t.ttft);
    else if (key == "idle_ms") err = read_ms(value, field, t.idle);
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
      err = read_number(value, field, usd);
      b.usd = usd;
    } else if (key == "tokens") {
      std::int64_t n = 0;
      if (value.get_int64().get(n) != simdjson::SUCCESS || n < 0) err = fmt::format("{} must be a non-negative integer", field);
      b.tokens = n;
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
    else if (key == "timeouts") err = read_timeouts(value, options.timeouts);
    else if (key == "ca_file") err = read_string(value, "ca_file", options.ca_file);
    else if (key == "verify_tls") {
      if (value.get_bool().get(options.verify_tls) != simdjson::SUCCESS) err = "verify_tls must be true or false";
    } else if (key == "deadline_ms") {
      std::chrono::milliseconds d{0};
      err = read_ms(value, "deadline_ms", d);
      options.deadline = d;
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
