#include "mock_server.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "llmguard/client.h"

namespace llmguard::mock {
namespace {

using std::chrono::milliseconds;

TEST_CASE("Scripts parse every reply field, expand times, and reject unknown fields") {
  auto script = parse_script(R"([{"model":"a","status":429,"headers":{"retry-after":"2"},"body":"{}",
    "delay_ms":5,"drip_ms":1,"chunk_bytes":8,"times":2},{"hang":true},{"reset_after_bytes":10},
    {"truncate_after_events":3,"content":"hi"}])");
  REQUIRE(script.ok());
  REQUIRE(script->size() == 5);
  CHECK((*script)[0].first == "a");
  CHECK((*script)[1].second.status == 429);
  CHECK((*script)[0].second.headers.at(0).second == "2");
  CHECK((*script)[0].second.delay == milliseconds(5));
  CHECK((*script)[2].first == "*");
  CHECK((*script)[2].second.hang);
  CHECK((*script)[3].second.reset_after_bytes == 10u);
  CHECK((*script)[4].second.truncate_after_events == 3);
  CHECK_FALSE(parse_script(R"([{"stauts":429}])").ok());
  CHECK_FALSE(parse_script(R"({"status":429})").ok());
  CHECK_FALSE(parse_script(R"([{"times":0}])").ok());
}

TEST_CASE("Fault mixes parse names and probabilities and refuse nonsense") {
  auto mix = parse_fault_mix("rate_limit=0.2, overloaded=0.1,hang=0.02,retry_after_ms=50");
  REQUIRE(mix.ok());
  CHECK(mix->rate_limit == doctest::Approx(0.2));
  CHECK(mix->overloaded == doctest::Approx(0.1));
  CHECK(mix->hang == doctest::Approx(0.02));
  CHECK(mix->retry_after == milliseconds(50));
  CHECK_FALSE(parse_fault_mix("rate_limit=2").ok());
  CHECK_FALSE(parse_fault_mix("gremlins=0.1").ok());
  CHECK_FALSE(parse_fault_mix("rate_limit").ok());
  CHECK_FALSE(parse_fault_mix("rate_limit=0.7,overloaded=0.7").ok());
}

TEST_CASE("Scripted replies go to their model's queue before the shared one") {
  auto server = std::move(MockServer::start({}).value());
  server->enqueue("*", MockReply{.status = 500});
  server->enqueue("b", MockReply{.status = 404});
  CHECK(server->port() > 0);
  CHECK(server->base_url().ends_with("/v1"));
  CHECK(server->stats().requests == 0);
  server->reset();
  CHECK(server->stats().requests == 0);
}

// A blocking HTTP/1.1 client over a raw socket: the tests see the exact
// bytes the mock sends, garbage included.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void post(std::string_view path, std::string_view body, const std::vector<std::string>& headers = {}) {
    std::string request = fmt::format(
        "POST {} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\n"
        "content-length: {}\r\nconnection: close\r\n",
        path, body.size());
    for (const auto& h : headers) request += h + "\r\n";
    request += "\r\n";
    request += body;
    REQUIRE(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  }
  // Reads until the mock closes or `max` bytes came.
  std::string read(std::size_t max = std::size_t{1} << 24) {
    std::string out;
    char buf[16384];
    while (out.size() < max) {
      const ssize_t n = ::recv(fd_, buf, std::min(sizeof buf, max - out.size()), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
};

// The body of a whole response, chunked or not.
std::string body_of(const std::string& response) {
  const std::size_t head_end = response.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  std::string_view rest = std::string_view(response).substr(head_end + 4);
  if (response.substr(0, head_end).find("transfer-encoding: chunked") == std::string::npos) return std::string(rest);
  std::string body;
  while (!rest.empty()) {
    const std::size_t line_end = rest.find("\r\n");
    if (line_end == std::string_view::npos) break;
    const std::size_t size = std::stoul(std::string(rest.substr(0, line_end)), nullptr, 16);
    if (size == 0 || rest.size() < line_end + 2 + size) break;
    body.append(rest.substr(line_end + 2, size));
    rest.remove_prefix(line_end + 2 + size + 2);
  }
  return body;
}

std::string exchange(MockServer& server, std::string_view path, std::string_view body,
                     const std::vector<std::string>& headers = {}) {
  RawConnection c(server.port());
  c.post(path, body, headers);
  return c.read();
}

constexpr std::string_view kOpenAIChat = R"({"model":"m","messages":[{"role":"user","content":"hi there"}]})";
constexpr std::string_view kOpenAIStream =
    R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi there"}]})";
constexpr std::string_view kAnthropicChat =
    R"({"model":"m","max_tokens":50,"messages":[{"role":"user","content":"hi there"}]})";
constexpr std::string_view kAnthropicStream =
    R"({"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi there"}]})";

std::int64_t rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));
  }
  return 0;
}

TEST_CASE("Scripts carry the hostile faults: endless, usage, omit_usage, completion_tokens, raw, echo_key") {
  auto script = parse_script(R"([{"endless":true,"drip_ms":0},{"usage":"{\"prompt_tokens\": 1e999}"},
    {"usage":{"input_tokens":-5, "output_tokens":2}},{"usage":null},{"omit_usage":true},{"completion_tokens":100000},
    {"raw":"HTTP/1.1 abc\r\n\r\n"},{"echo_key":true}])");
  REQUIRE(script.ok());
  REQUIRE(script->size() == 8);
  CHECK((*script)[0].second.endless);
  CHECK((*script)[1].second.usage == R"({"prompt_tokens": 1e999})");
  CHECK((*script)[2].second.usage == R"({"input_tokens":-5,"output_tokens":2})");
  CHECK((*script)[3].second.usage == "null");
  CHECK((*script)[4].second.omit_usage);
  CHECK((*script)[5].second.completion_tokens == 100000);
  CHECK((*script)[6].second.raw == "HTTP/1.1 abc\r\n\r\n");
  CHECK((*script)[7].second.echo_key);
  CHECK_FALSE(parse_script(R"([{"endless":1}])").ok());
  CHECK_FALSE(parse_script(R"([{"raw":7}])").ok());
  CHECK_FALSE(parse_script(R"([{"completion_tokens":"many"}])").ok());
}

TEST_CASE("raw: the bytes go out verbatim instead of a response, then the connection closes") {
  auto server = std::move(MockServer::start({}).value());
  for (std::string raw : {std::string("HTTP/1.1 abc\r\n\r\n"), std::string("just a body, HTTP/0.9 style\n")}) {
    server->enqueue("*", MockReply{.raw = raw});
    CHECK(exchange(*server, "/v1/chat/completions", kOpenAIChat) == raw);
  }
  CHECK(server->stats().requests == 2);
}

TEST_CASE("endless: content deltas keep coming until the client hangs up, and the mock stays responsive") {
  auto server = std::move(MockServer::start({}).value());
  server->enqueue("*", MockReply{.content = "tick ", .endless = true});
  {
    RawConnection c(server->port());
    c.post("/v1/chat/completions", kOpenAIStream);
    const std::string got = c.read(std::size_t{1} << 20);
    REQUIRE(got.size() == std::size_t{1} << 20);  // far more than any finite reply
    CHECK(got.starts_with("HTTP/1.1 200"));
    CHECK(got.find(R"("role":"assistant")") != std::string::npos);
    std::size_t deltas = 0;
    for (std::size_t at = got.find(R"("content":"tick ")"); at != std::string::npos;
         at = got.find(R"("content":"tick ")", at + 1)) {
      ++deltas;
    }
    CHECK(deltas > 1000);
    CHECK(got.find("[DONE]") == std::string::npos);
    CHECK(got.find("finish_reason\":\"stop") == std::string::npos);
  }  // hang up
  // Anthropic's shape, and a request that did not ask for a stream still gets one.
  server->enqueue("*", MockReply{.drip = milliseconds(1), .endless = true});
  {
    RawConnection c(server->port());
    c.post("/v1/messages", kAnthropicChat);
    const std::string got = c.read(32 << 10);
    CHECK(got.find("text/event-stream") != std::string::npos);
    CHECK(got.find("event: message_start") != std::string::npos);
    CHECK(got.find(R"("text":"more ")") != std::string::npos);
    CHECK(got.find("message_stop") == std::string::npos);
  }
  // A client that never reads: the mock buffers one delta, not the endless stream.
  const std::int64_t before = rss_kb();
  server->enqueue("*", MockReply{.endless = true});
  RawConnection idle(server->port());
  idle.post("/v1/chat/completions", kOpenAIStream);
  std::this_thread::sleep_for(milliseconds(500));
  const std::string other = exchange(*server, "/v1/chat/completions", kOpenAIChat);
  CHECK(other.starts_with("HTTP/1.1 200"));
  // Unbounded, the mock grows by tens of megabytes a second here.
  CHECK(rss_kb() - before < 4 * 1024);
}

TEST_CASE("usage: the scripted text is the usage object of whole replies and of streams, both formats") {
  auto server = std::move(MockServer::start({}).value());
  const std::string usage = R"({"prompt_tokens": -5, "completion_tokens": 1e999, "total_tokens": 0})";
  server->enqueue("*", MockReply{.usage = usage});
  std::string body = body_of(exchange(*server, "/v1/chat/completions", kOpenAIChat));
  CHECK(body.find(R"("usage":)" + usage) != std::string::npos);
  // A stream that did not ask for usage still carries the scripted one.
  server->enqueue("*", MockReply{.usage = usage});
  body = body_of(exchange(*server, "/v1/chat/completions", kOpenAIStream));
  CHECK(body.find(R"("choices":[],"usage":)" + usage) != std::string::npos);
  CHECK(body.ends_with("data: [DONE]\n\n"));
  const std::string anthropic_usage = R"({"input_tokens": -5, "output_tokens": 9223372036854775807})";
  server->enqueue("*", MockReply{.usage = anthropic_usage});
  body = body_of(exchange(*server, "/v1/messages", kAnthropicChat));
  CHECK(body.find(R"("usage":)" + anthropic_usage) != std::string::npos);
  server->enqueue("*", MockReply{.usage = "null"});
  body = body_of(exchange(*server, "/v1/messages", kAnthropicStream));
  const std::size_t start = body.find("message_start");
  const std::size_t delta = body.find("event: message_delta");
  REQUIRE(start != std::string::npos);
  REQUIRE(delta != std::string::npos);
  CHECK(body.find(R"("usage":null)", start) < delta);               // in message_start
  CHECK(body.find(R"("usage":null)", delta) != std::string::npos);  // and in message_delta
}

TEST_CASE("omit_usage: no usage anywhere, whole or streamed, OpenAI or Anthropic") {
  auto server = std::move(MockServer::start({}).value());
  const std::string openai_stream_with_usage = R"({"model":"m","stream":true,"stream_options":{"include_usage":true},)"
                                               R"("messages":[{"role":"user","content":"x"}]})";
  for (auto [path, request] :
       std::vector<std::pair<std::string_view, std::string_view>>{{"/v1/chat/completions", kOpenAIChat},
                                                                  {"/v1/chat/completions", openai_stream_with_usage},
                                                                  {"/v1/messages", kAnthropicChat},
                                                                  {"/v1/messages", kAnthropicStream}}) {
    CAPTURE(request);
    const std::string with = body_of(exchange(*server, path, request));
    CHECK(with.find("usage") != std::string::npos);  // the default reply reports it
    server->enqueue("*", MockReply{.omit_usage = true});
    const std::string without = body_of(exchange(*server, path, request));
    CHECK(without.find("usage") == std::string::npos);
    CHECK(without.find("Hello ") != std::string::npos);  // the reply itself is intact
  }
}

TEST_CASE("completion_tokens: the provider bills far above max_tokens and the client accounts it") {
  auto server = std::move(MockServer::start({}).value());
  for (Provider p : {Provider::kOpenAI, Provider::kAnthropic}) {
    for (bool stream : {false, true}) {
      CAPTURE(static_cast<int>(p));
      CAPTURE(stream);
      server->reset();
      server->enqueue("*", MockReply{.completion_tokens = 100000});
      ClientOptions o;
      o.targets.push_back({.name = "t", .provider = p, .base_url = server->base_url(), .model = "m"});
      auto client = std::move(Client::create(std::move(o)).value());
      ChatRequest r;
      r.messages.push_back(Message::user("hi"));
      r.max_tokens = 5;
      CallOptions options;
      if (stream) options.on_delta = [](const StreamDelta&) {};
      auto reply = client->guarded_chat(r, options);
      REQUIRE(reply.ok());
      CHECK(reply->usage.completion_tokens == 100000);
      CHECK_FALSE(reply->usage.estimated);
      CHECK(server->stats().completion_tokens == 100000);
    }
  }
}

TEST_CASE("Paths are served as the real services serve them; any other gets that service's 404") {
  auto server = std::move(MockServer::start({}).value());
  constexpr std::string_view kGeminiChat = R"({"contents":[{"role":"user","parts":[{"text":"hi"}]}]})";
  for (std::string_view path : {"/v1/chat/completions", "/openai/v1/chat/completions",
                                "/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01",
                                "/openai/deployments/gpt4o/chat/completions?x=1&api-version=2024-06-01"}) {
    CAPTURE(path);
    CHECK(exchange(*server, path, kOpenAIChat).starts_with("HTTP/1.1 200"));
  }
  CHECK(exchange(*server, "/v1/messages", kAnthropicChat).starts_with("HTTP/1.1 200"));
  for (std::string_view path :
       {"/v1beta/models/gemini-2.5-flash:generateContent", "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        "/v1/projects/p-1/locations/us-central1/publishers/google/models/g:generateContent",
        "/v1beta1/projects/p/locations/global/publishers/google/models/g:generateContent"}) {
    CAPTURE(path);
    CHECK(exchange(*server, path, kGeminiChat).starts_with("HTTP/1.1 200"));
  }

  struct Refused {
    std::string_view path, body, content_type, says;
  };
  for (const Refused& r : {
           Refused{"/chat/completions", kOpenAIChat, "application/json", "Invalid URL (POST /chat/completions)"},
           Refused{"/v2/chat/completions", kOpenAIChat, "application/json", "Invalid URL"},
           Refused{"/openai/deployments/gpt4o/chat/completions", kOpenAIChat, "application/json", "Resource not found"},
           Refused{"/openai/deployments//chat/completions?api-version=1", kOpenAIChat, "application/json",
                   "Resource not found"},
           Refused{"/messages", kAnthropicChat, "application/json", "not_found_error"},
           Refused{"/v1/v1/messages", kAnthropicChat, "application/json", "not_found_error"},
           Refused{"/models/g:generateContent", kGeminiChat, "text/html", "was not found on this server"},
           Refused{"/v1beta/v1beta/models/g:generateContent", kGeminiChat, "text/html", "was not found"},
           Refused{"/v2/models/g:generateContent", kGeminiChat, "text/html", "was not found"},
           Refused{"/v1/projects/p/publishers/google/models/g:generateContent", kGeminiChat, "text/html",
                   "was not found"},
           Refused{"/v1beta/models/g:countTokens", kGeminiChat, "application/json", "Invalid URL"},
       }) {
    CAPTURE(r.path);
    const std::string response = exchange(*server, r.path, r.body);
    CHECK(response.starts_with("HTTP/1.1 404"));
    CHECK(response.find(fmt::format("content-type: {}", r.content_type)) != std::string::npos);
    CHECK(body_of(response).find(r.says) != std::string::npos);
  }

  // A client pointed at the API root without its version hears why.
  auto client = Client::create({.targets = {{.name = "claude",
                                             .provider = Provider::kAnthropic,
                                             .base_url = server->root_url(),
                                             .model = "claude-x",
                                             .api_key = "sk-ant-test"}}});
  REQUIRE(client.ok());
  auto reply = (*client)->guarded_chat({.messages = {Message::user("hi")}, .max_tokens = 10});
  REQUIRE_FALSE(reply.ok());
  CHECK(reply.error().attempts.at(0).http_status == 404);
  CHECK(reply.error().hint.find("base_url") != std::string::npos);
}

TEST_CASE("echo_key: the presented credential comes back in code, type and message, every way it leaks") {
  auto server = std::move(MockServer::start({}).value());
  const std::string key = "sk-test-Secret1234567890abcdef";
  std::string upper = key;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  struct Case {
    std::string_view path, request;
    std::string header;
  };
  for (const Case& c : {Case{"/v1/chat/completions", kOpenAIChat, "authorization: Bearer " + key},
                        Case{"/v1/messages", kAnthropicChat, "x-api-key: " + key},
                        Case{"/openai/deployments/d/chat/completions?api-version=1", kOpenAIChat, "api-key: " + key}}) {
    CAPTURE(c.path);
    server->enqueue("*", MockReply{.status = 401, .echo_key = true});
    const std::string response = exchange(*server, c.path, c.request, {c.header});
    CHECK(response.starts_with("HTTP/1.1 401"));
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE(parser.parse(body_of(response)).get(root) == simdjson::SUCCESS);
    simdjson::dom::element error = root["error"].value();
    CHECK(error["code"].get_string().value() == key);
    CHECK(error["type"].get_string().value() == key);
    const std::string_view message = error["message"].get_string().value();
    CHECK(message.find(key) < 100);
    CHECK(message.find(upper) != std::string_view::npos);
    CHECK(message.size() > 1024);
    CHECK(message.ends_with(key));
    CHECK(message.size() - key.size() < 1024);  // the last copy straddles byte 1024
  }
}

TEST_CASE("reject_prefill: a request ending on the assistant's turn gets the API's 400, any other the reply") {
  auto server = std::move(MockServer::start({}).value());
  struct Case {
    std::string_view path, prefilled, plain, phrase;
  };
  const Case cases[] = {
      {"/v1/messages",
       R"({"model":"claude-b","max_tokens":9,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Sure"}]})",
       kAnthropicChat, "does not support assistant message prefill"},
      {"/v1/chat/completions",
       R"({"model":"gpt-b","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Sure"}]})",
       kOpenAIChat, "does not support assistant message prefill"},
      {"/v1beta/models/gemini-b:generateContent",
       R"({"contents":[{"role":"user","parts":[{"text":"hi"}]},{"role":"model","parts":[{"text":"Sure"}]}]})",
       R"({"contents":[{"role":"user","parts":[{"text":"hi"}]}]})", "ends with a user role"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.path);
    server->enqueue("*", MockReply{.reject_prefill = true});
    const std::string rejected = exchange(*server, c.path, c.prefilled);
    CHECK(rejected.starts_with("HTTP/1.1 400"));
    CHECK(body_of(rejected).find(c.phrase) != std::string::npos);
    server->enqueue("*", MockReply{.reject_prefill = true});
    CHECK(exchange(*server, c.path, c.plain).starts_with("HTTP/1.1 200"));
  }
  auto script = parse_script(R"([{"reject_prefill":true}])");
  REQUIRE(script.ok());
  CHECK((*script)[0].second.reject_prefill);
}

TEST_CASE("Bedrock: a tool exchange without a toolConfig gets Bedrock's ValidationException, with one it is answered") {
  auto server = std::move(MockServer::start({}).value());
  const std::string messages =
      R"("messages":[{"role":"user","content":[{"text":"weather?"}]},)"
      R"({"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"weather","input":{}}}]},)"
      R"({"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"4 C"}]}}]}])";
  const std::string refused = exchange(*server, "/model/m/converse", "{" + messages + "}");
  CHECK(refused.starts_with("HTTP/1.1 400"));
  CHECK(refused.find("x-amzn-errortype: ValidationException") != std::string::npos);
  CHECK(body_of(refused).find("toolConfig field must be defined") != std::string::npos);
  const std::string answered =
      exchange(*server, "/model/m/converse",
               "{" + messages + R"(,"toolConfig":{"tools":[{"toolSpec":{"name":"x","inputSchema":{"json":{}}}}]}})");
  CHECK(answered.starts_with("HTTP/1.1 200"));
}

TEST_CASE("echo_key in a stream: content first, then a mid-stream error event carrying the key") {
  auto server = std::move(MockServer::start({}).value());
  const std::string key = "sk-ant-api03-streamsecret";
  server->enqueue("*", MockReply{.echo_key = true});
  std::string body =
      body_of(exchange(*server, "/v1/chat/completions", kOpenAIStream, {"authorization: Bearer " + key}));
  const std::size_t content = body.find(R"("content":"Hello )");
  const std::size_t error = body.find(R"(data: {"error":)");
  REQUIRE(content != std::string::npos);
  REQUIRE(error != std::string::npos);
  CHECK(content < error);
  CHECK(body.find(R"("code":")" + key + "\"", error) != std::string::npos);
  server->enqueue("*", MockReply{.echo_key = true});
  body = body_of(exchange(*server, "/v1/messages", kAnthropicStream, {"x-api-key: " + key}));
  const std::size_t text = body.find("text_delta");
  const std::size_t event = body.find("event: error\ndata: ");
  REQUIRE(text != std::string::npos);
  REQUIRE(event != std::string::npos);
  CHECK(text < event);
  CHECK(body.find(R"("type":")" + key + "\"", event) != std::string::npos);
  CHECK(body.find("message_stop") == std::string::npos);
}

}  // namespace
}  // namespace llmguard::mock
