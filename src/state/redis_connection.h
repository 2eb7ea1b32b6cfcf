// A connection to Redis for the state a fleet shares (DESIGN.md, "Shared
// state across processes"): where it is (a URL), one blocking connection
// with a timeout on every command, and Lua scripts run by their SHA1 and
// loaded again when the server has lost them. Blocking, so it runs on a
// thread of its own, never the event loop.
#ifndef LLMGUARD_SRC_STATE_REDIS_CONNECTION_H_
#define LLMGUARD_SRC_STATE_REDIS_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmguard/error.h"

struct redisContext;

namespace llmguard::internal {

struct RedisEndpoint {
  enum class Kind : std::uint8_t { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string socket_path;
  int db = 0;
  std::string username;  // an ACL user (Redis 6+); "" = the default user
  std::string password;  // never in a message, a log line or an error
  // "redis://127.0.0.1:6379/0", "unix:///run/redis.sock?db=2": the place,
  // without credentials, for messages.
  std::string where() const;
};

// Parses redis://[[user]:password@]host[:port][/db] (IPv6 hosts in brackets)
// and unix://[[user]:password@]/path[?db=N]. rediss:// is refused: the
// hiredis Debian 12 ships (0.14) has no TLS. Errors (kBadRequest) never
// repeat a password.
Result<RedisEndpoint> parse_redis_url(std::string_view url);

struct RedisReply {
  enum class Type : std::uint8_t { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  long long integer = 0;
  std::string text;  // kString, kStatus, kError
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::kError; }
  // An error reply's first word: "NOSCRIPT", "OOM", "READONLY", "WRONGTYPE"...
  std::string_view error_code() const;
};

class RedisConnection {
 public:
  // Connects lazily, on the first command; `timeout` bounds the connect and
  // every command's round trip.
  RedisConnection(RedisEndpoint endpoint, std::chrono::milliseconds timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends one command and reads its reply. A reply that is a Redis error is
  // a value (type kError); a failed connection, a timeout or a broken reply
  // is a kConnection error naming Redis, after which the connection is
  // dropped and the next command connects again.
  Result<RedisReply> command(std::span<const std::string_view> argv);
  Result<RedisReply> command(std::initializer_list<std::string_view> argv) {
    return command(std::span<const std::string_view>(argv.begin(), argv.size()));
  }
  // Sends every command in one write and reads their replies in order: one
  // round trip for all. After a failure every command left gets it too.
  std::vector<Result<RedisReply>> pipeline(std::span<const std::span<const std::string_view>> commands);
  // Bounds the round trips of the commands that follow (a call whose
  // deadline is nearer than the connection's timeout asks for less).
  void set_timeout(std::chrono::milliseconds timeout);
  std::chrono::milliseconds timeout() const { return timeout_; }
  // On a connection that has sent SUBSCRIBE: the next message pushed, or
  // nullopt when none came within `wait` or `interrupt_fd` became readable.
  // A failure drops the connection (the subscription with it).
  Result<std::optional<RedisReply>> next_message(std::chrono::milliseconds wait, int interrupt_fd = -1);
  bool connected() const { return context_ != nullptr; }
  const RedisEndpoint& endpoint() const { return endpoint_; }

 private:
  Status connect();
  void drop();
  Error failure(std::string_view what) const;

  RedisEndpoint endpoint_;
  std::chrono::milliseconds timeout_;
  redisContext* context_ = nullptr;
};

// A Lua script, run by EVALSHA; a server that does not know it (restarted,
// SCRIPT FLUSH, a failover to a replica that never saw it) answers NOSCRIPT,
// and the script is sent whole with EVAL, which also caches it there.
class RedisScript {
 public:
  explicit RedisScript(std::string source);
  const std::string& sha1() const { return sha1_; }
  const std::string& source() const { return source_; }
  Result<RedisReply> run(RedisConnection& redis, std::span<const std::string> keys,
                         std::span<const std::string> args) const;

 private:
  std::string source_;
  std::string sha1_;  // lowercase hex, as SCRIPT LOAD answers
};

// One run of a script, to be sent along with others.
struct ScriptCall {
  const RedisScript* script = nullptr;
  std::vector<std::string> keys;
  std::vector<std::string> args;
};
// Runs them all in one round trip (a second one for those the server
// answered NOSCRIPT, which ran nothing); their replies in order.
std::vector<Result<RedisReply>> run_scripts(RedisConnection& redis, std::span<const ScriptCall> calls);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_STATE_REDIS_CONNECTION_H_
