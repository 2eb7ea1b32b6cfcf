#include "state/redis_connection.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "redis_server.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;
using testing::RedisServer;

TEST_CASE("Redis URLs: host, port, database, credentials, unix sockets") {
  auto plain = parse_redis_url("redis://10.0.0.5");
  REQUIRE(plain.ok());
  CHECK(plain->host == "10.0.0.5");
  CHECK(plain->port == 6379);
  CHECK(plain->db == 0);
  CHECK(plain->password.empty());

  auto full = parse_redis_url("redis://svc:p%40ss%3Aword@redis.internal:6380/3");
  REQUIRE(full.ok());
  CHECK(full->username == "svc");
  CHECK(full->password == "p@ss:word");
  CHECK(full->host == "redis.internal");
  CHECK(full->port == 6380);
  CHECK(full->db == 3);
  CHECK(full->where() == "redis://redis.internal:6380/3");

  auto password_only = parse_redis_url("redis://:hunter2@127.0.0.1:7000");
  REQUIRE(password_only.ok());
  CHECK(password_only->username.empty());
  CHECK(password_only->password == "hunter2");

  auto v6 = parse_redis_url("redis://[::1]:6390/1");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 6390);
  CHECK(v6->where() == "redis://[::1]:6390/1");

  auto unix_socket = parse_redis_url("unix://:s3cret@/run/redis/redis.sock?db=2");
  REQUIRE(unix_socket.ok());
  CHECK(unix_socket->kind == RedisEndpoint::Kind::kUnix);
  CHECK(unix_socket->socket_path == "/run/redis/redis.sock");
  CHECK(unix_socket->db == 2);
  CHECK(unix_socket->password == "s3cret");
  CHECK(unix_socket->where() == "unix:///run/redis/redis.sock?db=2");
}

TEST_CASE("Bad Redis URLs are refused with a reason, never repeating the password") {
  struct Case {
    std::string_view url, says;
  };
  for (const Case& c :
       {Case{"rediss://:topsecret@cache:6380", "no TLS"}, Case{"http://:topsecret@cache:6379", "expected redis://"},
        Case{"redis://:topsecret@cache:99999", "port"}, Case{"redis://:topsecret@cache:6379/x", "database number"},
        Case{"redis://:topsecret@:6379", "no host"}, Case{"redis://:top%zzsecret@cache", "percent-encoding"},
        Case{"unix://:topsecret@relative/redis.sock", "absolute"}, Case{"unix:///run/redis.sock?timeout=5", "db=N"},
        Case{"redis://:topsecret@[::1:6379", "']'"}}) {
    CAPTURE(c.url);
    auto parsed = parse_redis_url(c.url);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().category == ErrorCategory::kBadRequest);
    CHECK(parsed.error().message.find(c.says) != std::string::npos);
    CHECK(parsed.error().message.find("topsecret") == std::string::npos);
  }
}

TEST_CASE("Commands against a real redis-server: replies, error replies as values, reconnecting after a restart") {
  auto server = RedisServer::start({});
  REQUIRE(server);
  auto endpoint = parse_redis_url(server->url(5));
  REQUIRE(endpoint.ok());
  RedisConnection redis(*endpoint, milliseconds(2000));
  CHECK_FALSE(redis.connected());

  auto pong = redis.command({"PING"});
  REQUIRE(pong.ok());
  CHECK(pong->type == RedisReply::Type::kStatus);
  CHECK(pong->text == "PONG");
  REQUIRE(redis.command({"SET", "k", std::string_view("a\0b", 3)}).ok());
  auto got = redis.command({"GET", "k"});
  REQUIRE(got.ok());
  CHECK(got->type == RedisReply::Type::kString);
  CHECK(got->text == std::string("a\0b", 3));  // binary-safe
  auto db = redis.command({"CLIENT", "INFO"});
  REQUIRE(db.ok());
  CHECK(db->text.find(" db=5 ") != std::string::npos);  // SELECTed as the URL says

  auto wrong = redis.command({"INCR", "k"});
  REQUIRE(wrong.ok());  // the server answered: an error reply is a value
  CHECK(wrong->is_error());
  CHECK(wrong->error_code() == "ERR");
  auto listed = redis.command({"MGET", "k", "missing"});
  REQUIRE(listed.ok());
  REQUIRE(listed->elements.size() == 2);
  CHECK(listed->elements[1].type == RedisReply::Type::kNil);

  REQUIRE(server->restart({}));
  auto lost = redis.command({"PING"});  // the old connection is gone with the old server
  if (!lost.ok()) {
    CHECK(lost.error().category == ErrorCategory::kConnection);
    CHECK(lost.error().message.starts_with("redis redis://127.0.0.1:"));
  }
  auto again = redis.command({"GET", "k"});
  REQUIRE(again.ok());
  CHECK(again->type == RedisReply::Type::kNil);  // a new server, empty

  server->kill_now();
  auto down = redis.command({"PING"});
  if (down.ok()) down = redis.command({"PING"});
  REQUIRE_FALSE(down.ok());
  CHECK(down.error().category == ErrorCategory::kConnection);
  CHECK(down.error().message.find("redis://127.0.0.1:") != std::string::npos);
  CHECK_FALSE(redis.connected());
}

TEST_CASE("A password goes to AUTH and nowhere else; a wrong one is a connection error naming Redis") {
  auto server = RedisServer::start({.password = "correct-horse-battery"});
  REQUIRE(server);
  auto right = parse_redis_url("redis://:correct-horse-battery@127.0.0.1:" + std::to_string(server->port()));
  REQUIRE(right.ok());
  RedisConnection good(*right, milliseconds(2000));
  auto pong = good.command({"PING"});
  REQUIRE(pong.ok());
  CHECK(pong->text == "PONG");

  auto wrong = parse_redis_url("redis://:wrong-staple@127.0.0.1:" + std::to_string(server->port()));
  REQUIRE(wrong.ok());
  RedisConnection bad(*wrong, milliseconds(2000));
  auto refused = bad.command({"PING"});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().category == ErrorCategory::kConnection);
  CHECK(refused.error().message.find("AUTH refused") != std::string::npos);
  CHECK(refused.error().message.find("wrong-staple") == std::string::npos);

  auto none = parse_redis_url("unix://" + server->socket_path());
  REQUIRE(none.ok());
  RedisConnection anonymous(*none, milliseconds(2000));
  auto noauth = anonymous.command({"GET", "k"});
  REQUIRE(noauth.ok());
  CHECK(noauth->error_code() == "NOAUTH");
}

TEST_CASE("A server that never answers costs the command's timeout, not a hang") {
  // A listening socket nobody serves: the connect succeeds (the kernel's
  // backlog), the command's reply never comes.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto endpoint = parse_redis_url("redis://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  REQUIRE(endpoint.ok());
  RedisConnection redis(*endpoint, milliseconds(50));
  auto reply = redis.command({"PING"});
  REQUIRE_FALSE(reply.ok());
  CHECK(reply.error().category == ErrorCategory::kConnection);
  CHECK(reply.error().message.find("no reply within 50 ms") != std::string::npos);
  CHECK_FALSE(redis.connected());
  ::close(fd);
}

TEST_CASE("Scripts run by SHA1 and are sent again when the server has lost them") {
  auto server = RedisServer::start({});
  REQUIRE(server);
  auto endpoint = parse_redis_url(server->url());
  REQUIRE(endpoint.ok());
  RedisConnection redis(*endpoint, milliseconds(2000));
  const RedisScript add("return redis.call('INCRBY', KEYS[1], ARGV[1])");

  auto loaded = redis.command({"SCRIPT", "LOAD", "return redis.call('INCRBY', KEYS[1], ARGV[1])"});
  REQUIRE(loaded.ok());
  CHECK(loaded->text == add.sha1());
  const std::string keys[] = {"counter"};
  const std::string by_two[] = {"2"};
  auto first = add.run(redis, keys, by_two);
  REQUIRE(first.ok());
  CHECK(first->integer == 2);

  REQUIRE(redis.command({"SCRIPT", "FLUSH"}).ok());
  auto after_flush = add.run(redis, keys, by_two);  // NOSCRIPT, then EVAL
  REQUIRE(after_flush.ok());
  CHECK(after_flush->integer == 4);
  auto cached = redis.command({"SCRIPT", "EXISTS", add.sha1()});
  REQUIRE(cached.ok());
  REQUIRE(cached->elements.size() == 1);
  CHECK(cached->elements[0].integer == 1);  // EVAL cached it again

  const RedisScript broken("return redis.call('NOSUCHCOMMAND')");
  auto failed = broken.run(redis, keys, by_two);
  REQUIRE(failed.ok());
  CHECK(failed->is_error());  // the script's own error, as a value
}

TEST_CASE("A pipeline: many commands, one round trip, every reply in its place") {
  auto server = RedisServer::start({});
  REQUIRE(server);
  auto endpoint = parse_redis_url(server->url());
  REQUIRE(endpoint.ok());
  RedisConnection redis(*endpoint, milliseconds(2000));
  const std::string_view set[] = {"SET", "k", "v"};
  const std::string_view wrong_type[] = {"INCR", "k"};
  const std::string_view get[] = {"GET", "k"};
  const std::string_view missing[] = {"GET", "nobody"};
  const std::span<const std::string_view> commands[] = {set, wrong_type, get, missing};
  auto replies = redis.pipeline(commands);
  REQUIRE(replies.size() == 4);
  REQUIRE(replies[0].ok());
  CHECK(replies[0]->text == "OK");
  REQUIRE(replies[1].ok());
  CHECK(replies[1]->is_error());  // one command's error is its own: the others still answer
  REQUIRE(replies[2].ok());
  CHECK(replies[2]->text == "v");
  REQUIRE(replies[3].ok());
  CHECK(replies[3]->type == RedisReply::Type::kNil);

  // Scripts, some the server has lost: those alone are sent again whole.
  const RedisScript add("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  const RedisScript twice("return 2 * redis.call('INCRBY', KEYS[1], ARGV[1])");
  const ScriptCall known{.script = &add, .keys = {"a"}, .args = {"1"}};
  REQUIRE(run_scripts(redis, std::span(&known, 1)).front().ok());
  REQUIRE(redis.command({"SCRIPT", "FLUSH"}).ok());
  REQUIRE(run_scripts(redis, std::span(&known, 1)).front().ok());  // cached again by EVAL: a = 2
  const ScriptCall calls[] = {{.script = &add, .keys = {"a"}, .args = {"10"}},
                              {.script = &twice, .keys = {"b"}, .args = {"5"}},
                              {.script = &add, .keys = {"a"}, .args = {"100"}}};
  auto ran = run_scripts(redis, calls);
  REQUIRE(ran.size() == 3);
  REQUIRE(ran[0].ok());
  CHECK(ran[0]->integer == 12);
  REQUIRE(ran[1].ok());
  CHECK(ran[1]->integer == 10);  // NOSCRIPT first, then EVAL: run once, not twice
  REQUIRE(ran[2].ok());
  CHECK(ran[2]->integer == 112);
  auto b = redis.command({"GET", "b"});
  REQUIRE(b.ok());
  CHECK(b->text == "5");

  // The server gone: every command of the pipeline fails, none hangs.
  server.reset();
  auto lost = redis.pipeline(commands);
  REQUIRE(lost.size() == 4);
  for (const auto& r : lost) {
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kConnection);
  }
  CHECK_FALSE(redis.connected());
}

}  // namespace
}  // namespace llmguard::internal
