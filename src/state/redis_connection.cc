#include "state/redis_connection.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>

namespace llmguard::internal {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding, for the user and password parts of a URL.
std::optional<std::string> percent_decoded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_digit(text[i + 1]);
    const int low = hex_digit(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

std::optional<int> parse_number(std::string_view text, int min, int max) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) return std::nullopt;
  return value;
}

// The URL with its password replaced, for messages.
std::string masked(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const std::size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < scheme) return std::string(url);
  const std::size_t colon = url.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return fmt::format("{}***{}", url.substr(0, colon + 1), url.substr(at));
}

Error bad_url(std::string_view url, std::string_view problem) {
  return make_error(ErrorCategory::kBadRequest, fmt::format("redis URL \"{}\": {}", masked(url), problem));
}

timeval to_timeval(std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  return tv;
}

RedisReply converted(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = r.type == REDIS_REPLY_STRING   ? RedisReply::Type::kString
                 : r.type == REDIS_REPLY_STATUS ? RedisReply::Type::kStatus
                                                : RedisReply::Type::kError;
      out.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(converted(*r.element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

struct ReplyDeleter {
  void operator()(void* reply) const { freeReplyObject(reply); }
};

}  // namespace

std::string RedisEndpoint::where() const {
  if (kind == Kind::kUnix)
    return db == 0 ? fmt::format("unix://{}", socket_path) : fmt::format("unix://{}?db={}", socket_path, db);
  const bool v6 = host.find(':') != std::string::npos;
  return fmt::format("redis://{}{}{}:{}/{}", v6 ? "[" : "", host, v6 ? "]" : "", port, db);
}

Result<RedisEndpoint> parse_redis_url(std::string_view url) {
  RedisEndpoint e;
  std::string_view rest;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("unix://")) {
    e.kind = RedisEndpoint::Kind::kUnix;
    rest = url.substr(7);
  } else if (url.starts_with("rediss://")) {
    return bad_url(url,
                   "rediss:// (TLS) is not supported: this build's hiredis has no TLS; "
                   "reach Redis over loopback, a unix socket or a TLS tunnel (stunnel, spiped)");
  } else {
    return bad_url(url, "expected redis://host:port/db or unix:///path/to/redis.sock");
  }
  // Credentials: everything before the last '@' that precedes the path.
  const std::size_t path_start = e.kind == RedisEndpoint::Kind::kUnix ? rest.find("@/") : rest.find('/');
  const std::size_t at =
      e.kind == RedisEndpoint::Kind::kUnix
          ? path_start
          : rest.substr(0, path_start == std::string_view::npos ? rest.size() : path_start).rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    const std::size_t colon = userinfo.find(':');
    auto user = percent_decoded(userinfo.substr(0, colon));
    auto password =
        colon == std::string_view::npos ? std::optional<std::string>("") : percent_decoded(userinfo.substr(colon + 1));
    if (!user || !password) return bad_url(url, "bad percent-encoding in the user or password");
    if (colon == std::string_view::npos) {
      e.password = std::move(*user);  // "redis://secret@host", as redis-cli -u reads it
    } else {
      e.username = std::move(*user);
      e.password = std::move(*password);
    }
    rest.remove_prefix(at + 1);
  }
  if (e.kind == RedisEndpoint::Kind::kUnix) {
    const std::size_t query = rest.find('?');
    e.socket_path = std::string(rest.substr(0, query));
    if (!e.socket_path.starts_with('/')) return bad_url(url, "a unix socket's path must be absolute: unix:///path");
    if (query != std::string_view::npos) {
      const std::string_view q = rest.substr(query + 1);
      if (!q.starts_with("db=")) return bad_url(url, "the only query parameter is db=N");
      auto db = parse_number(q.substr(3), 0, 1 << 20);
      if (!db) return bad_url(url, "db must be a number");
      e.db = *db;
    }
    return e;
  }
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos && slash + 1 < rest.size()) {
    auto db = parse_number(rest.substr(slash + 1), 0, 1 << 20);
    if (!db) return bad_url(url, "the path must be a database number, e.g. redis://host:6379/0");
    e.db = *db;
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad_url(url, "an IPv6 host needs its closing ']'");
    e.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return bad_url(url, "expected :port after the IPv6 host");
    if (!after.empty()) port = after.substr(1);
  } else {
    const std::size_t colon = authority.rfind(':');
    e.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (e.host.empty()) return bad_url(url, "no host");
  if (!port.empty()) {
    auto p = parse_number(port, 1, 65535);
    if (!p) return bad_url(url, "the port must be a number from 1 to 65535");
    e.port = *p;
  }
  return e;
}

std::string_view RedisReply::error_code() const {
  if (type != Type::kError) return {};
  const std::string_view t = text;
  return t.substr(0, t.find(' '));
}

RedisConnection::RedisConnection(RedisEndpoint endpoint, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {}

RedisConnection::~RedisConnection() { drop(); }

void RedisConnection::drop() {
  if (context_) redisFree(context_);
  context_ = nullptr;
}

Error RedisConnection::failure(std::string_view what) const {
  return make_error(ErrorCategory::kConnection, fmt::format("redis {}: {}", endpoint_.where(), what));
}

Status RedisConnection::connect() {
  const timeval tv = to_timeval(timeout_);
  context_ = endpoint_.kind == RedisEndpoint::Kind::kUnix
                 ? redisConnectUnixWithTimeout(endpoint_.socket_path.c_str(), tv)
                 : redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv);
  if (!context_) return failure("cannot allocate a connection");
  if (context_->err) {
    Error e = failure(fmt::format("cannot connect: {}", context_->errstr));
    drop();
    return e;
  }
  if (redisSetTimeout(context_, tv) != REDIS_OK) {
    drop();
    return failure("cannot set the command timeout");
  }
  if (endpoint_.kind == RedisEndpoint::Kind::kTcp) redisEnableKeepAlive(context_);
  // Set up as the URL says: a failure here is the endpoint's, not a command's.
  auto setup = [this](std::span<const std::string_view> argv, std::string_view what) -> Status {
    auto reply = command(argv);
    if (!reply.ok()) return std::move(reply).error();
    if (reply->is_error()) {
      Error e = failure(fmt::format("{} refused: {}", what, reply->text));
      drop();
      return e;
    }
    return ok_status();
  };
  if (!endpoint_.password.empty()) {
    const std::string_view with_user[] = {"AUTH", endpoint_.username, endpoint_.password};
    const std::string_view without[] = {"AUTH", endpoint_.password};
    Status auth = endpoint_.username.empty() ? setup(without, "AUTH") : setup(with_user, "AUTH");
    if (!auth.ok()) return auth;
  }
  if (endpoint_.db != 0) {
    const std::string db = std::to_string(endpoint_.db);
    const std::string_view select[] = {"SELECT", db};
    Status selected = setup(select, "SELECT");
    if (!selected.ok()) return selected;
  }
  return ok_status();
}

Result<RedisReply> RedisConnection::command(std::span<const std::string_view> argv) {
  const std::span<const std::string_view> one[] = {argv};
  return std::move(pipeline(one).front());
}

std::vector<Result<RedisReply>> RedisConnection::pipeline(std::span<const std::span<const std::string_view>> commands) {
  std::vector<Result<RedisReply>> replies;
  replies.reserve(commands.size());
  auto fail_the_rest = [&](Error e) {
    drop();  // a late reply would be read as the next command's
    while (replies.size() < commands.size()) replies.emplace_back(e);
    return std::move(replies);
  };
  if (!context_) {
    Status connected = connect();
    if (!connected.ok()) return fail_the_rest(std::move(connected).error());
  }
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  for (std::span<const std::string_view> argv : commands) {
    args.clear();
    lengths.clear();
    for (std::string_view a : argv) {
      args.push_back(a.data());
      lengths.push_back(a.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(args.size()), args.data(), lengths.data()) != REDIS_OK) {
      return fail_the_rest(failure("cannot queue a command"));
    }
  }
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || !raw) {
      const bool timed_out = context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
      return fail_the_rest(timed_out ? failure(fmt::format("no reply within {} ms", timeout_.count()))
                                     : failure(context_->errstr[0] ? context_->errstr : "connection lost"));
    }
    std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
    replies.emplace_back(converted(*reply));
  }
  return replies;
}

void RedisConnection::set_timeout(std::chrono::milliseconds timeout) {
  timeout = std::max(timeout, std::chrono::milliseconds(1));
  if (timeout == timeout_) return;
  timeout_ = timeout;
  if (context_ && redisSetTimeout(context_, to_timeval(timeout_)) != REDIS_OK) drop();
}

Result<std::optional<RedisReply>> RedisConnection::next_message(std::chrono::milliseconds wait, int interrupt_fd) {
  if (!context_) return failure("not connected");
  void* raw = nullptr;
  if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) {
    drop();
    return failure("broken reply");
  }
  if (!raw) {
    pollfd pending[2] = {{.fd = context_->fd, .events = POLLIN, .revents = 0},
                         {.fd = interrupt_fd, .events = POLLIN, .revents = 0}};
    const int ready = ::poll(pending, interrupt_fd >= 0 ? 2 : 1, static_cast<int>(wait.count()));
    if (ready == 0 || (ready < 0 && errno == EINTR)) return std::optional<RedisReply>();
    if (ready > 0 && pending[1].revents != 0) return std::optional<RedisReply>();
    if (ready < 0 || redisBufferRead(context_) != REDIS_OK || redisGetReplyFromReader(context_, &raw) != REDIS_OK) {
      Error e = failure(context_->errstr[0] ? context_->errstr : "connection lost");
      drop();
      return e;
    }
    if (!raw) return std::optional<RedisReply>();  // part of a message: the rest comes with the next read
  }
  std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
  return std::optional<RedisReply>(converted(*reply));
}

RedisScript::RedisScript(std::string source) : source_(std::move(source)) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(source_.data(), source_.size(), digest, &size, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < size; ++i) {
    sha1_.push_back(kHex[digest[i] >> 4]);
    sha1_.push_back(kHex[digest[i] & 15]);
  }
}

Result<RedisReply> RedisScript::run(RedisConnection& redis, std::span<const std::string> keys,
                                    std::span<const std::string> args) const {
  const ScriptCall call{.script = this, .keys = {keys.begin(), keys.end()}, .args = {args.begin(), args.end()}};
  return std::move(run_scripts(redis, std::span(&call, 1)).front());
}

std::vector<Result<RedisReply>> run_scripts(RedisConnection& redis, std::span<const ScriptCall> calls) {
  std::vector<std::string> key_counts;
  key_counts.reserve(calls.size());
  std::vector<std::vector<std::string_view>> argvs;
  argvs.reserve(calls.size());
  for (const ScriptCall& c : calls) {
    key_counts.push_back(std::to_string(c.keys.size()));
    std::vector<std::string_view>& argv = argvs.emplace_back();
    argv.reserve(3 + c.keys.size() + c.args.size());
    argv = {"EVALSHA", c.script->sha1(), key_counts.back()};
    argv.insert(argv.end(), c.keys.begin(), c.keys.end());
    argv.insert(argv.end(), c.args.begin(), c.args.end());
  }
  std::vector<std::span<const std::string_view>> commands(argvs.begin(), argvs.end());
  std::vector<Result<RedisReply>> replies = redis.pipeline(commands);
  std::vector<std::size_t> unknown;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].ok() && replies[i]->error_code() == "NOSCRIPT") unknown.push_back(i);
  }
  if (unknown.empty()) return replies;
  std::vector<std::span<const std::string_view>> again;
  for (std::size_t i : unknown) {
    argvs[i][0] = "EVAL";
    argvs[i][1] = calls[i].script->source();
    again.emplace_back(argvs[i]);
  }
  std::vector<Result<RedisReply>> second = redis.pipeline(again);
  for (std::size_t k = 0; k < unknown.size(); ++k) replies[unknown[k]] = std::move(second[k]);
  return replies;
}

}  // namespace llmguard::internal
