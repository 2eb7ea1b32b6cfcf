#include "cli.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <ostream>
#include <sstream>

#include "classify.h"
#include "json_writer.h"
#include "llmguard/llmguard.h"
#include "mock_cli.h"
#include "request_json.h"
#include "secrets.h"
#include "state/redis_store.h"
#include "text.h"
#include "user_rules.h"

namespace llmguard::cli {
namespace {

using internal::JsonWriter;

void write_optional_seconds(JsonWriter& w, const std::optional<std::chrono::milliseconds>& delay) {
  if (delay) {
    w.number(static_cast<double>(delay->count()) / 1000.0);
  } else {
    w.null();
  }
}

struct ClassifyArgs {
  bool explain = false;  // adds "rule" and "evidence" to each answer
  internal::UserRules user_rules;
};

std::string classify_line(std::string_view line, const ClassifyArgs& args) {
  std::string out;
  JsonWriter w(out);
  auto invalid = [&](std::string_view why) {
    w.begin_object().key("category").string("unknown").key("retryable").boolean(false);
    w.key("retry_after_s").null().key("provider_code").string("").key("message").string("");
    w.key("hint").string("");
    if (args.explain) w.key("rule").string("").key("evidence").string("");
    w.key("input_error").string(why).end_object();
    return out;
  };
  // A blank line still gets its answer line: tools pair answers with inputs by position.
  if (internal::trim(line).empty()) return invalid("the line is empty");
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(line.data(), line.size(), true).get(root) != simdjson::SUCCESS || !root.is_object()) {
    return invalid("the line is not a JSON object");
  }
  std::int64_t status = 0;
  if (root["status"].get_int64().get(status) != simdjson::SUCCESS) {
    double d = 0;
    if (root["status"].get_double().get(d) == simdjson::SUCCESS) {
      // Checked before the conversion: 1e300 does not fit an integer.
      if (!(d >= 0 && d <= 999)) return invalid("status must be an HTTP status code");
      status = static_cast<std::int64_t>(d);
    }
  }
  if (status < 0 || status > 999) return invalid("status must be an HTTP status code");
  Headers headers;
  simdjson::dom::object header_object;
  if (root["headers"].get_object().get(header_object) == simdjson::SUCCESS) {
    for (auto [key, value] : header_object) {
      std::string_view v;
      if (value.get_string().get(v) == simdjson::SUCCESS) {
        headers.emplace_back(internal::to_lower(key), std::string(v));
      } else if (value.is_number()) {
        headers.emplace_back(internal::to_lower(key), simdjson::minify(value));
      }
    }
  }
  std::string_view body;
  simdjson::dom::element body_value;
  std::string body_storage;
  if (root["body"].get(body_value) == simdjson::SUCCESS) {
    if (body_value.get_string().get(body) != simdjson::SUCCESS && !body_value.is_null()) {
      body_storage = simdjson::minify(body_value);  // a body given as a JSON value
      body = body_storage;
    }
  }
  bool stream = false;
  if (root["stream"].get_bool().get(stream) != simdjson::SUCCESS) stream = false;

  std::string evidence;
  Error e =
      internal::classify_exchange(static_cast<int>(status), headers, body, stream, std::chrono::system_clock::now(),
                                  args.explain ? &evidence : nullptr, &args.user_rules);
  w.begin_object().key("category").string(to_string(e.category)).key("retryable").boolean(e.retryable());
  w.key("retry_after_s");
  write_optional_seconds(w, e.retry_after);
  w.key("provider_code").string(e.provider_code).key("message").string(e.message);
  w.key("hint").string(e.hint);
  // Evidence quotes the body, which classify_response has not redacted.
  if (args.explain) w.key("rule").string(e.rule).key("evidence").string(internal::redact_secrets(evidence));
  w.end_object();
  return out;
}

struct ChatArgs {
  std::string config;
  std::optional<std::string> message;  // "-": standard input
  std::string request_file;            // --request: a whole OpenAI-style request ("-": standard input)
  std::optional<std::string> system;
  std::optional<std::int64_t> max_tokens;
  std::optional<std::string> tag;
  std::optional<std::string> group;
  bool stream = false;
  bool restart = false;  // --restart-on-failure: a broken stream starts over (on the next target)
};

// The whole of standard input, or a file's contents; nullopt when unreadable.
std::optional<std::string> read_input(const std::string& path, std::istream& in) {
  std::ostringstream text;
  if (path == "-") {
    text << in.rdbuf();
    return text.str();
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  text << file.rdbuf();
  return text.str();
}

// The request a chat command sends: --request's file (whose "stream": true
// counts as --stream), or --message (with --system), then the flags that
// override it.
Result<ChatRequest> chat_request(ChatArgs& a, std::istream& in) {
  ChatRequest request;
  if (!a.request_file.empty()) {
    auto text = read_input(a.request_file, in);
    if (!text) return make_error(ErrorCategory::kBadRequest, fmt::format("cannot read {}", a.request_file));
    auto parsed = internal::parse_openai_request(*text);
    if (!parsed.ok()) return std::move(parsed).error();
    if (!parsed->group.empty()) {
      return make_error(ErrorCategory::kBadRequest,
                        fmt::format("request: group \"{}\": the configuration defines no groups", parsed->group));
    }
    request = std::move(parsed->request);
    a.stream = a.stream || parsed->stream;
  } else {
    std::string message = *a.message;
    if (message == "-") {
      message = *read_input("-", in);
      while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
    }
    if (a.system) request.messages.push_back(Message::system(*a.system));
    request.messages.push_back(Message::user(std::move(message)));
  }
  if (a.max_tokens) request.max_tokens = a.max_tokens;
  if (a.tag) request.caller_tag = *a.tag;
  return request;
}

int usage_error(std::ostream& err, std::string_view message, std::string_view usage) {
  err << "llmguard: " << message << "\nusage: " << usage << "\n";
  return 2;
}

void write_attempts(JsonWriter& w, const std::vector<Attempt>& attempts, const internal::Redactor& red) {
  w.key("attempts").begin_array();
  for (const Attempt& a : attempts) {
    w.begin_object().key("target").string(red.redact(a.target));
    if (a.skipped) {
      w.key("skipped").string(to_string(*a.skipped)).end_object();
      continue;
    }
    w.key("category");
    if (a.category) w.string(to_string(*a.category));
    else w.null();
    w.key("status");
    if (a.http_status != 0) w.number(std::int64_t{a.http_status});
    else w.null();
    w.key("waited_ms").number(static_cast<std::int64_t>(a.waited.count()));
    w.key("duration_ms").number(static_cast<std::int64_t>(a.duration.count()));
    // Why the call moved on after this attempt, when it failed.
    if (a.next) w.key("next").string(to_string(*a.next));
    if (a.reason) w.key("reason").string(to_string(*a.reason));
    w.end_object();
  }
  w.end_array();
}

// Every string passes through `red`: providers and gateways echo credentials
// back in error messages, and a model may repeat one in its reply.
std::string chat_result_json(const Result<ChatResponse>& r, const internal::Redactor& red) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  if (r.ok()) {
    const ChatResponse& c = *r;
    w.key("ok").boolean(true).key("target").string(red.redact(c.target)).key("model").string(red.redact(c.model));
    w.key("content").string(red.redact(c.content));
    w.key("finish_reason").string(to_string(c.finish));
    if (!c.tool_calls.empty()) {
      w.key("tool_calls").begin_array();
      for (const ToolCall& call : c.tool_calls) {
        w.begin_object().key("id").string(red.redact(call.id)).key("name").string(red.redact(call.name));
        w.key("arguments").string(red.redact(call.arguments_json)).end_object();
      }
      w.end_array();
    }
    w.key("usage").begin_object();
    w.key("prompt_tokens").number(c.usage.prompt_tokens).key("completion_tokens").number(c.usage.completion_tokens);
    w.key("cached_tokens").number(c.usage.cached_tokens).key("reasoning_tokens").number(c.usage.reasoning_tokens);
    w.key("total_tokens").number(c.usage.total_tokens).key("estimated").boolean(c.usage.estimated).end_object();
    w.key("cost_usd");
    if (c.cost_usd) w.number(*c.cost_usd);
    else w.null();
    write_attempts(w, c.attempts, red);
  } else {
    const Error& e = r.error();
    w.key("ok").boolean(false).key("error").begin_object().key("category").string(to_string(e.category));
    w.key("status");
    if (e.http_status != 0) w.number(std::int64_t{e.http_status});
    else w.null();
    w.key("message").string(red.redact(e.message));
    if (!e.provider_code.empty()) w.key("provider_code").string(red.redact(e.provider_code));
    if (!e.hint.empty()) w.key("hint").string(red.redact(e.hint));
    w.end_object();
    write_attempts(w, e.attempts, red);
    if (!e.partial_content.empty()) w.key("partial_content").string(red.redact(e.partial_content));
  }
  w.end_object();
  return out;
}

// A config file made into a client, the one way every command does it, so
// that doctor rejects exactly what chat rejects, with the same message.
struct ClientSetup {
  std::optional<Error> error;  // from reading the file or from Client::create
  ClientOptions options;       // as read, credentials included
  // Knows the file's credentials even when the client could not be built.
  internal::Redactor redactor;
  std::unique_ptr<Client> client;
};

// `warnings`: where the shared state's troubles are told (Redis away, back).
ClientSetup set_up_client(const std::string& config_path, std::ostream* warnings = nullptr) {
  ClientSetup s;
  auto options = load_client_options(config_path);
  if (!options.ok()) {
    s.error = std::move(options).error();
    return s;
  }
  s.options = std::move(*options);
  s.redactor = internal::Redactor(internal::credentials_of(s.options));
  ClientOptions create_with = s.options;
  if (warnings && create_with.shared_state) {
    create_with.on_event = [warnings, redactor = s.redactor](const Event& e) {
      if (e.kind == Event::Kind::kSharedStateUnavailable || e.kind == Event::Kind::kSharedStateRestored) {
        *warnings << "llmguard: " << escape_terminal_controls(redactor.redact(e.message)) << '\n' << std::flush;
      }
    };
  }
  auto client = Client::create(std::move(create_with));
  if (client.ok()) s.client = std::move(*client);
  else s.error = std::move(client).error();
  return s;
}

}  // namespace

std::string TerminalEscaper::feed(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (const char ch : piece) {
    const auto b = static_cast<unsigned char>(ch);
    if (held_c2_) {
      held_c2_ = false;
      if (b >= 0x80 && b <= 0x9f) {  // a C1 control, U+0080..U+009F
        out += fmt::format("\\u{:04x}", b);
        continue;
      }
      out += '\xc2';
    }
    if ((b < 0x20 && ch != '\n' && ch != '\t') || b == 0x7f) {
      out += fmt::format("\\x{:02x}", b);
    } else if (b == 0xc2) {
      held_c2_ = true;  // the next byte, maybe in the next piece, decides
    } else {
      out += ch;
    }
  }
  return out;
}

std::string TerminalEscaper::finish() {
  if (!held_c2_) return {};
  held_c2_ = false;
  return "\xc2";
}

std::string escape_terminal_controls(std::string_view text) {
  TerminalEscaper e;
  std::string out = e.feed(text);
  return out + e.finish();
}

int run_classify(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kUsage = "llmguard classify [--explain] [--config FILE] < errors.jsonl";
  ClassifyArgs a;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      out << "usage: " << kUsage << '\n';
      return 0;
    }
    if (args[i] == "--explain") {
      a.explain = true;
    } else if (args[i] == "--config" && i + 1 < args.size()) {
      // The file's classifier_rules apply; the rest of it is not needed here.
      auto options = load_client_options(args[++i]);
      auto rules = options.ok() ? internal::UserRules::compile(std::move(options->classifier_rules))
                                : Result<internal::UserRules>(options.error());
      if (!rules.ok()) {
        err << "llmguard: " << escape_terminal_controls(internal::redact_secrets(rules.error().message)) << '\n';
        return 2;
      }
      a.user_rules = std::move(*rules);
    } else {
      return usage_error(err, fmt::format("unexpected argument {}", args[i]), kUsage);
    }
  }
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out << classify_line(line, a) << '\n';
  }
  out.flush();
  return 0;
}

int run_chat(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kUsage =
      "llmguard chat --config FILE (--message TEXT|- [--system TEXT] | --request FILE|-)\n"
      "                     [--max-tokens N] [--tag TAG] [--stream [--restart-on-failure]]";
  ChatArgs a;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out << "usage: " << kUsage << '\n';
      return 0;
    }
    if (arg == "--stream") {
      a.stream = true;
      continue;
    }
    if (arg == "--restart-on-failure") {
      a.restart = true;
      continue;
    }
    if (i + 1 >= args.size()) return usage_error(err, fmt::format("{} needs a value", arg), kUsage);
    const std::string& value = args[++i];
    if (arg == "--config") {
      a.config = value;
    } else if (arg == "--message") {
      a.message = value;
    } else if (arg == "--request") {
      a.request_file = value;
    } else if (arg == "--system") {
      a.system = value;
    } else if (arg == "--tag") {
      a.tag = value;
    } else if (arg == "--group") {
      a.group = value;
    } else if (arg == "--max-tokens") {
      std::int64_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 1) {
        return usage_error(err, "--max-tokens needs a positive whole number", kUsage);
      }
      a.max_tokens = n;
    } else {
      return usage_error(err, fmt::format("unknown option {}", arg), kUsage);
    }
  }
  if (a.config.empty()) return usage_error(err, "--config is required", kUsage);
  if (a.message.has_value() == !a.request_file.empty()) {
    return usage_error(err, "give --message or --request (one of them)", kUsage);
  }
  if (a.system && !a.message) return usage_error(err, "--system goes with --message", kUsage);
  if (a.message && a.message->empty()) return usage_error(err, "--message is empty", kUsage);
  if (a.group)
    return usage_error(err, fmt::format("--group {}: the configuration defines no groups", *a.group), kUsage);
  if (a.message && *a.message == "-" && a.request_file == "-")
    return usage_error(err, "stdin can be read once", kUsage);

  Result<ChatRequest> request = chat_request(a, in);
  if (!request.ok()) {
    err << "llmguard: " << escape_terminal_controls(internal::redact_secrets(request.error().message)) << '\n';
    return 2;
  }
  ClientSetup setup = set_up_client(a.config, &err);
  Result<ChatResponse> result = setup.error ? Result<ChatResponse>(*setup.error) : Result<ChatResponse>(Error{});
  if (setup.client) {
    CallOptions call;
    call.restart_stream_on_failure = a.restart;
    // Deltas reach a terminal: credentials masked (also when split across
    // deltas), then control characters made visible.
    internal::StreamRedactor redact_stream(setup.redactor);
    TerminalEscaper escape;
    auto flush_stream = [&] { err << escape.feed(redact_stream.finish()) << escape.finish() << std::flush; };
    if (a.stream) {
      call.on_delta = [&](const StreamDelta& d) {
        if (d.kind == StreamDelta::Kind::kText) err << escape.feed(redact_stream.feed(d.text)) << std::flush;
        if (d.kind == StreamDelta::Kind::kRestart) {
          flush_stream();
          err << "\n[llmguard: restarting the reply]\n" << std::flush;
        }
      };
    }
    result = setup.client->guarded_chat(*request, call);
    if (a.stream) {
      flush_stream();
      err << '\n';
    }
  }
  out << chat_result_json(result, setup.redactor) << '\n';
  out.flush();
  return result.ok() ? 0 : 1;
}

// For commands whose one argument is --config FILE: the exit code when the
// command is done already (--help, a usage error), else nullopt.
std::optional<int> read_config_argument(const std::vector<std::string>& args, std::string_view usage, std::ostream& out,
                                        std::ostream& err, std::string& config) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      out << "usage: " << usage << '\n';
      return 0;
    }
    if (args[i] == "--config" && i + 1 < args.size()) config = args[++i];
    else return usage_error(err, fmt::format("unexpected argument {}", args[i]), usage);
  }
  if (config.empty()) return usage_error(err, "--config is required", usage);
  return std::nullopt;
}

int run_doctor(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kUsage = "llmguard doctor --config FILE";
  std::string config;
  if (auto done = read_config_argument(args, kUsage, out, err, config)) return *done;
  ClientSetup setup = set_up_client(config);
  const internal::Redactor& red = setup.redactor;
  // What reaches the terminal: credentials masked, control characters visible.
  auto shown = [&](std::string_view text) { return escape_terminal_controls(red.redact(text)); };
  if (setup.error) {
    out << "config: " << shown(setup.error->message) << '\n';
    return 1;
  }
  setup.client.reset();
  int failures = 0;
  for (const Target& target : setup.options.targets) {
    // One target, one try: the doctor reports what each target does now.
    ClientOptions single = setup.options;
    single.targets = {target};
    single.retry.max_attempts = 1;
    auto client = Client::create(std::move(single));
    if (!client.ok()) {
      out << fmt::format("{:<16} CONFIG  {}\n", shown(target.name), shown(client.error().message));
      ++failures;
      continue;
    }
    ChatRequest ping;
    ping.messages = {Message::user("Reply with the word ok.")};
    ping.max_tokens = 5;
    const auto start = std::chrono::steady_clock::now();
    auto r = (*client)->guarded_chat(ping);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (r.ok()) {
      out << fmt::format("{:<16} OK      {} ms, model {}\n", shown(target.name), ms.count(), shown(r->model));
    } else {
      ++failures;
      const Error& e = r.error();
      out << fmt::format("{:<16} FAIL    {}{}: {}\n{:<16}         hint: {}\n", shown(target.name),
                         to_string(e.category), e.http_status ? fmt::format(" (HTTP {})", e.http_status) : "",
                         shown(e.message), "", shown(e.hint));
    }
  }
  out.flush();
  return failures == 0 ? 0 : 1;
}

int run_fleet(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kUsage = "llmguard fleet --config FILE";
  std::string config;
  if (auto done = read_config_argument(args, kUsage, out, err, config)) return *done;
  auto options = load_client_options(config);
  const internal::Redactor redactor(options.ok() ? internal::credentials_of(*options) : std::vector<std::string>{});
  auto fail = [&](const Error& e) {
    err << "llmguard: " << escape_terminal_controls(redactor.redact(internal::redact_secrets(e.message))) << '\n';
    return 1;
  };
  if (!options.ok()) return fail(options.error());
  if (!options->shared_state) {
    return usage_error(err, fmt::format("{} has no shared_state: its clients share nothing", config), kUsage);
  }
  const SharedState& shared = *options->shared_state;
  auto endpoint = internal::parse_redis_url(shared.redis_url);
  if (!endpoint.ok()) return fail(endpoint.error());
  if (endpoint->password.empty() && !shared.password_env.empty()) {
    if (const char* password = std::getenv(shared.password_env.c_str())) endpoint->password = password;
  }
  // An operator's look during an incident: a second or two, not the calls' quarter.
  internal::RedisConnection redis(std::move(*endpoint),
                                  std::max(shared.command_timeout, std::chrono::milliseconds(2000)));
  internal::RedisStore store(redis, shared.name_space);
  auto snapshot = store.snapshot_json();
  if (!snapshot.ok()) return fail(snapshot.error());
  out << *snapshot << '\n';
  out.flush();
  return 0;
}

int run_cli(int argc, char** argv, std::istream& in, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kUsage =
      "llmguard classify [--explain] [--config FILE] < errors.jsonl\n"
      "       llmguard chat --config FILE (--message TEXT|- | --request FILE|-) [options; see chat --help]\n"
      "       llmguard doctor --config FILE\n"
      "       llmguard fleet --config FILE\n"
      "       llmguard mock [--port N] [--faults SPEC] [--script FILE] ...";
  if (argc < 2) return usage_error(err, "a command is required", kUsage);
  const std::string command = argv[1];
  std::vector<std::string> rest(argv + 2, argv + argc);
  if (command == "classify") return run_classify(rest, in, out, err);
  if (command == "chat") return run_chat(rest, in, out, err);
  if (command == "doctor") return run_doctor(rest, out, err);
  if (command == "fleet") return run_fleet(rest, out, err);
  if (command == "mock") return mock::run_mock_cli(argc - 1, argv + 1);
  if (command == "--help" || command == "-h" || command == "help") {
    out << "usage: " << kUsage << '\n';
    return 0;
  }
  return usage_error(err, fmt::format("unknown command {}", command), kUsage);
}

}  // namespace llmguard::cli
