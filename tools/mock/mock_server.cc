// Single-threaded epoll server. Each connection serves one request at a time
// (HTTP/1.1 keep-alive, pipelined requests answered in order); a response is
// a list of timed steps (write bytes, reset, close) so delays, drips, hangs
// and resets are all the same mechanism driven by one timer heap.
#include "mock_server.h"

#include <absl/time/time.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <simdjson.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>

#include "json_writer.h"
#include "providers/eventstream.h"
#include "providers/sigv4.h"
#include "text.h"

namespace llmguard::mock {
namespace {

using Clock = std::chrono::steady_clock;
using internal::JsonWriter;
using std::chrono::milliseconds;

// Real providers' bodies, verbatim in shape and wording.
constexpr std::string_view kOpenAIRateLimit =
    R"({"error":{"message":"Rate limit reached for {MODEL} in organization org-mock on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"requests","param":null,"code":"rate_limit_exceeded"}})";
constexpr std::string_view kOpenAIQuota =
    R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})";
constexpr std::string_view kOpenAIOverloaded =
    R"({"error":{"message":"That model is currently overloaded with other requests. You can retry your request, or contact us through our help center at help.openai.com if the error persists.","type":"server_error","param":null,"code":null}})";
constexpr std::string_view kOpenAIServerError =
    R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}})";
constexpr std::string_view kAnthropicOverloaded =
    R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
constexpr std::string_view kAnthropicRateLimit =
    R"({"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."}})";
constexpr std::string_view kAnthropicQuota =
    R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}})";
constexpr std::string_view kAnthropicServerError =
    R"({"type":"error","error":{"type":"api_error","message":"Internal server error"}})";
// Gemini's google.rpc.Status bodies. {MODEL} and {DELAY} are filled in.
constexpr std::string_view kGeminiRateLimit =
    R"({"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 5, model: {MODEL}\nPlease retry in {DELAY}s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"model":"{MODEL}","location":"global"},"quotaValue":"5"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{DELAY}s"}]}})";
constexpr std::string_view kGeminiQuota =
    R"({"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_requests_per_model_per_day, limit: 0","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_requests_per_model_per_day","quotaId":"GenerateRequestsPerDayPerProjectPerModel"}]}]}})";
constexpr std::string_view kGeminiOverloaded =
    R"({"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}})";
constexpr std::string_view kGeminiServerError =
    R"({"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}})";
constexpr std::string_view kGeminiBadKey =
    R"({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}})";
constexpr std::string_view kGeminiBadJson =
    R"({"error":{"code":400,"message":"Invalid JSON payload received. Unexpected token.","status":"INVALID_ARGUMENT"}})";
constexpr std::string_view kNginxBadGateway =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Overloaded";
    default:
      return "Status";
  }
}

// Bedrock's {"message"} bodies; the exception's name goes in x-amzn-errortype.
constexpr std::string_view kBedrockRateLimit = R"({"message":"Too many requests, please wait before trying again."})";
constexpr std::string_view kBedrockQuota =
    R"({"message":"Your request exceeds the service quota for your account. You can view your quotas at Viewing service quotas. You can resubmit your request later."})";
constexpr std::string_view kBedrockOverloaded = R"({"message":"Bedrock is unable to process your request."})";
constexpr std::string_view kBedrockServerError =
    R"({"message":"The system encountered an unexpected error during processing. Try your request again."})";
constexpr std::string_view kBedrockBadJson =
    R"({"message":"Malformed input request, please reformat your input and try again."})";
constexpr std::string_view kBedrockBadKey = R"({"message":"The security token included in the request is invalid."})";
constexpr std::string_view kBedrockBadSignature =
    R"({"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."})";
// What x-amzn-errortype carries after the exception's name.
constexpr std::string_view kBedrockErrorTypeSuffix = ":http://internal.amazon.com/coral/com.amazon.bedrock/";

enum class Api { kOpenAI, kAnthropic, kGemini, kBedrock, kControl, kUnknown };

// What the mock read from one chat request.
struct ChatCall {
  Api api = Api::kOpenAI;
  std::string model;
  bool stream = false;
  bool include_usage = false;
  std::int64_t prompt_chars = 0;
  std::int64_t message_count = 0;
  std::string last_user_text;
  std::string last_role;     // of the last message ("model" for Gemini)
  bool tool_blocks = false;  // Bedrock: a toolUse or toolResult block in the messages
  bool tool_config = false;  // Bedrock: the request has a toolConfig
  std::optional<std::int64_t> max_tokens;
  bool valid_json = true;
};

void read_message_text(simdjson::dom::element content, ChatCall& call, bool is_user) {
  if (content.is_string()) {
    std::string_view text = content.get_string().value_unsafe();
    call.prompt_chars += static_cast<std::int64_t>(text.size());
    if (is_user) call.last_user_text.assign(text);
    return;
  }
  simdjson::dom::array blocks;
  if (content.get_array().get(blocks) != simdjson::SUCCESS) return;
  for (auto block : blocks) {
    std::string_view text;
    if (block["text"].get_string().get(text) == simdjson::SUCCESS) {
      call.prompt_chars += static_cast<std::int64_t>(text.size());
      if (is_user) call.last_user_text.assign(text);
    } else if (block["content"].get_string().get(text) == simdjson::SUCCESS) {
      call.prompt_chars += static_cast<std::int64_t>(text.size());
    }
  }
}

ChatCall read_chat_call(std::string_view body, Api api) {
  ChatCall call;
  call.api = api;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS || !root.is_object()) {
    call.valid_json = false;
    return call;
  }
  std::string_view model;
  if (root["model"].get_string().get(model) == simdjson::SUCCESS) call.model.assign(model);
  call.tool_config = root["toolConfig"].error() == simdjson::SUCCESS;
  bool stream = false;
  if (root["stream"].get_bool().get(stream) == simdjson::SUCCESS) call.stream = stream;
  bool include_usage = false;
  if (root.at_pointer("/stream_options/include_usage").get_bool().get(include_usage) == simdjson::SUCCESS) {
    call.include_usage = include_usage;
  }
  std::int64_t max_tokens = 0;
  if (root["max_tokens"].get_int64().get(max_tokens) == simdjson::SUCCESS) call.max_tokens = max_tokens;
  std::string_view system;
  if (root["system"].get_string().get(system) == simdjson::SUCCESS) {
    call.prompt_chars += static_cast<std::int64_t>(system.size());
  }
  if (root.at_pointer("/generationConfig/maxOutputTokens").get_int64().get(max_tokens) == simdjson::SUCCESS) {
    call.max_tokens = max_tokens;
  }
  if (root.at_pointer("/inferenceConfig/maxTokens").get_int64().get(max_tokens) == simdjson::SUCCESS) {
    call.max_tokens = max_tokens;
  }
  if (simdjson::dom::element blocks; root["system"].get(blocks) == simdjson::SUCCESS && blocks.is_array()) {
    read_message_text(blocks, call, false);  // Bedrock: [{"text": ...}]
  }
  auto read_parts = [&call](simdjson::dom::element parts_owner, bool is_user) {
    simdjson::dom::array parts;
    if (parts_owner["parts"].get_array().get(parts) != simdjson::SUCCESS) return;
    for (auto part : parts) {
      std::string_view text;
      if (part["text"].get_string().get(text) != simdjson::SUCCESS) continue;
      call.prompt_chars += static_cast<std::int64_t>(text.size());
      if (is_user) call.last_user_text.assign(text);
    }
  };
  simdjson::dom::element instruction;
  if (root["systemInstruction"].get(instruction) == simdjson::SUCCESS) read_parts(instruction, false);
  simdjson::dom::array contents;
  if (root["contents"].get_array().get(contents) == simdjson::SUCCESS) {
    for (auto c : contents) {
      ++call.message_count;
      std::string_view role;
      if (c["role"].get_string().get(role) != simdjson::SUCCESS) role = "user";
      call.last_role.assign(role);
      read_parts(c, role == "user");
    }
  }
  simdjson::dom::array messages;
  if (root["messages"].get_array().get(messages) == simdjson::SUCCESS) {
    for (auto m : messages) {
      ++call.message_count;
      std::string_view role;
      if (m["role"].get_string().get(role) != simdjson::SUCCESS) role = {};
      call.last_role.assign(role);
      simdjson::dom::element content;
      if (m["content"].get(content) == simdjson::SUCCESS) read_message_text(content, call, role == "user");
      if (simdjson::dom::array blocks; api == Api::kBedrock && content.get_array().get(blocks) == simdjson::SUCCESS) {
        for (auto block : blocks) {
          if (block["toolUse"].error() == simdjson::SUCCESS || block["toolResult"].error() == simdjson::SUCCESS) {
            call.tool_blocks = true;
          }
        }
      }
    }
  }
  return call;
}

// Cuts `text` to at most `max` bytes without splitting a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n);
}

std::int64_t tokens_for_chars(std::int64_t chars) { return (chars + 3) / 4; }

struct Generated {
  std::string content;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::string finish_reason;
  std::optional<std::string> usage_json;  // verbatim usage object, when scripted
  bool omit_usage = false;
  std::vector<MockToolCall> tool_calls;
};

// A made-up id for tool call `i` of response `n`, in the API's style.
std::string tool_id(std::string_view prefix, std::uint64_t n, std::size_t i) {
  return fmt::format("{}{}x{}", prefix, n, i);
}

// A tool call's arguments in two fragments, as providers stream them.
std::pair<std::string_view, std::string_view> halves(std::string_view json) {
  const std::size_t mid = json.size() / 2;
  return {json.substr(0, mid), json.substr(mid)};
}

Generated generate(const ChatCall& call, const MockReply& reply) {
  Generated g;
  g.content = !reply.content.empty() || !reply.tool_calls.empty()
                  ? reply.content
                  : fmt::format("Hello from {}. You said: {}", call.model.empty() ? "the mock" : call.model,
                                utf8_prefix(call.last_user_text, 48));
  g.tool_calls = reply.tool_calls;
  g.prompt_tokens = tokens_for_chars(call.prompt_chars) + 3 * call.message_count;
  g.completion_tokens = std::max<std::int64_t>(1, tokens_for_chars(static_cast<std::int64_t>(g.content.size())));
  g.finish_reason = "stop";
  if (call.max_tokens && *call.max_tokens < g.completion_tokens) {
    g.completion_tokens = std::max<std::int64_t>(1, *call.max_tokens);
    g.content = std::string(utf8_prefix(g.content, static_cast<std::size_t>(g.completion_tokens * 4)));
    g.finish_reason = "length";
  }
  if (!g.tool_calls.empty()) {
    std::int64_t chars = static_cast<std::int64_t>(g.content.size());
    for (const auto& t : g.tool_calls) chars += static_cast<std::int64_t>(t.name.size() + t.arguments_json.size());
    g.completion_tokens = std::max<std::int64_t>(1, tokens_for_chars(chars));
    g.finish_reason = "tool_calls";
  }
  if (reply.completion_tokens) g.completion_tokens = *reply.completion_tokens;
  g.usage_json = reply.usage;
  g.omit_usage = reply.omit_usage;
  return g;
}

void write_openai_usage(JsonWriter& w, const Generated& g) {
  if (g.omit_usage) return;
  if (g.usage_json) {
    w.key("usage").raw(*g.usage_json);
    return;
  }
  w.key("usage").begin_object();
  w.key("prompt_tokens").number(g.prompt_tokens).key("completion_tokens").number(g.completion_tokens);
  w.key("total_tokens").number(g.prompt_tokens + g.completion_tokens);
  w.key("prompt_tokens_details").begin_object().key("cached_tokens").number(std::int64_t{0}).end_object();
  w.key("completion_tokens_details").begin_object().key("reasoning_tokens").number(std::int64_t{0}).end_object();
  w.end_object();
}

std::string openai_completion(const ChatCall& call, const Generated& g, std::uint64_t n) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("id").string(fmt::format("chatcmpl-mock-{}", n)).key("object").string("chat.completion");
  w.key("created").number(std::int64_t{1700000000}).key("model").string(call.model);
  w.key("choices").begin_array().begin_object().key("index").number(std::int64_t{0});
  w.key("message").begin_object().key("role").string("assistant").key("content");
  if (g.content.empty() && !g.tool_calls.empty()) {
    w.null();
  } else {
    w.string(g.content);
  }
  if (!g.tool_calls.empty()) {
    w.key("tool_calls").begin_array();
    for (std::size_t i = 0; i < g.tool_calls.size(); ++i) {
      w.begin_object().key("id").string(tool_id("call_mock", n, i)).key("type").string("function");
      w.key("function").begin_object().key("name").string(g.tool_calls[i].name);
      w.key("arguments").string(g.tool_calls[i].arguments_json).end_object().end_object();
    }
    w.end_array();
  }
  w.key("refusal").null().end_object();
  w.key("logprobs").null().key("finish_reason").string(g.finish_reason).end_object().end_array();
  write_openai_usage(w, g);
  w.key("system_fingerprint").string("fp_mock").end_object();
  return out;
}

std::string_view anthropic_stop_reason(const Generated& g) {
  if (!g.tool_calls.empty()) return "tool_use";
  return g.finish_reason == "length" ? "max_tokens" : "end_turn";
}

std::string anthropic_message(const ChatCall& call, const Generated& g, std::uint64_t n) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("id").string(fmt::format("msg_mock{}", n)).key("type").string("message");
  w.key("role").string("assistant").key("model").string(call.model);
  w.key("content").begin_array();
  if (!g.content.empty() || g.tool_calls.empty()) {
    w.begin_object().key("type").string("text").key("text").string(g.content).end_object();
  }
  for (std::size_t i = 0; i < g.tool_calls.size(); ++i) {
    w.begin_object().key("type").string("tool_use").key("id").string(tool_id("toolu_mock", n, i));
    w.key("name").string(g.tool_calls[i].name).key("input").raw(g.tool_calls[i].arguments_json).end_object();
  }
  w.end_array();
  w.key("stop_reason").string(anthropic_stop_reason(g)).key("stop_sequence").null();
  if (g.usage_json) {
    w.key("usage").raw(*g.usage_json);
  } else if (!g.omit_usage) {
    w.key("usage").begin_object().key("input_tokens").number(g.prompt_tokens);
    w.key("cache_creation_input_tokens").number(std::int64_t{0}).key("cache_read_input_tokens").number(std::int64_t{0});
    w.key("output_tokens").number(g.completion_tokens).end_object();
  }
  w.end_object();
  return out;
}

// Splits generated text into a few deltas at word boundaries.
std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> pieces;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    end = end == std::string::npos ? text.size() : end + 1;
    pieces.emplace_back(text.substr(start, end - start));
    start = end;
  }
  if (pieces.empty()) pieces.emplace_back();
  return pieces;
}

std::vector<std::string> openai_stream_events(const ChatCall& call, const Generated& g, std::uint64_t n) {
  std::vector<std::string> events;
  const std::string id = fmt::format("chatcmpl-mock-{}", n);
  auto chunk = [&](auto&& fill_choice, bool with_choice) {
    std::string out = "data: ";
    JsonWriter w(out);
    w.begin_object().key("id").string(id).key("object").string("chat.completion.chunk");
    w.key("created").number(std::int64_t{1700000000}).key("model").string(call.model);
    w.key("choices").begin_array();
    if (with_choice) {
      w.begin_object().key("index").number(std::int64_t{0});
      fill_choice(w);
      w.end_object();
    }
    w.end_array();
    if (!with_choice) write_openai_usage(w, g);
    w.end_object();
    out += "\n\n";
    events.push_back(std::move(out));
  };
  chunk(
      [](JsonWriter& w) {
        w.key("delta").begin_object().key("role").string("assistant").key("content").string("").end_object();
        w.key("finish_reason").null();
      },
      true);
  if (!g.content.empty() || g.tool_calls.empty()) {
    for (const auto& piece : split_words(g.content)) {
      chunk(
          [&](JsonWriter& w) {
            w.key("delta").begin_object().key("content").string(piece).end_object().key("finish_reason").null();
          },
          true);
    }
  }
  for (std::size_t i = 0; i < g.tool_calls.size(); ++i) {
    const MockToolCall& t = g.tool_calls[i];
    const auto index = static_cast<std::int64_t>(i);
    chunk(
        [&](JsonWriter& w) {
          w.key("delta").begin_object().key("tool_calls").begin_array().begin_object().key("index").number(index);
          w.key("id").string(tool_id("call_mock", n, i)).key("type").string("function");
          w.key("function").begin_object().key("name").string(t.name).key("arguments").string("").end_object();
          w.end_object().end_array().end_object().key("finish_reason").null();
        },
        true);
    const auto [first, second] = halves(t.arguments_json);
    for (std::string_view piece : {first, second}) {
      chunk(
          [&](JsonWriter& w) {
            w.key("delta").begin_object().key("tool_calls").begin_array().begin_object().key("index").number(index);
            w.key("function").begin_object().key("arguments").string(piece).end_object();
            w.end_object().end_array().end_object().key("finish_reason").null();
          },
          true);
    }
  }
  chunk([&](JsonWriter& w) { w.key("delta").begin_object().end_object().key("finish_reason").string(g.finish_reason); },
        true);
  if ((call.include_usage || g.usage_json) && !g.omit_usage) chunk([](JsonWriter&) {}, false);
  events.emplace_back("data: [DONE]\n\n");
  return events;
}

std::vector<std::string> anthropic_stream_events(const ChatCall& call, const Generated& g, std::uint64_t n) {
  std::vector<std::string> events;
  auto event = [&](std::string_view name, const std::string& data) {
    events.push_back(fmt::format("event: {}\ndata: {}\n\n", name, data));
  };
  std::string out;
  {
    JsonWriter w(out);
    w.begin_object().key("type").string("message_start").key("message").begin_object();
    w.key("id").string(fmt::format("msg_mock{}", n)).key("type").string("message").key("role").string("assistant");
    w.key("model").string(call.model).key("content").begin_array().end_array().key("stop_reason").null();
    if (g.usage_json) {
      w.key("usage").raw(*g.usage_json);
    } else if (!g.omit_usage) {
      w.key("usage").begin_object().key("input_tokens").number(g.prompt_tokens);
      w.key("output_tokens").number(std::int64_t{1}).end_object();
    }
    w.end_object().end_object();
  }
  event("message_start", out);
  std::int64_t block = 0;
  if (!g.content.empty() || g.tool_calls.empty()) {
    event("content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
    for (const auto& piece : split_words(g.content)) {
      out.clear();
      JsonWriter w(out);
      w.begin_object().key("type").string("content_block_delta").key("index").number(std::int64_t{0});
      w.key("delta")
          .begin_object()
          .key("type")
          .string("text_delta")
          .key("text")
          .string(piece)
          .end_object()
          .end_object();
      event("content_block_delta", out);
    }
    event("content_block_stop", R"({"type":"content_block_stop","index":0})");
    ++block;
  }
  for (std::size_t i = 0; i < g.tool_calls.size(); ++i, ++block) {
    out.clear();
    {
      JsonWriter w(out);
      w.begin_object().key("type").string("content_block_start").key("index").number(block);
      w.key("content_block")
          .begin_object()
          .key("type")
          .string("tool_use")
          .key("id")
          .string(tool_id("toolu_mock", n, i));
      w.key("name").string(g.tool_calls[i].name).key("input").begin_object().end_object().end_object().end_object();
    }
    event("content_block_start", out);
    const auto [first, second] = halves(g.tool_calls[i].arguments_json);
    for (std::string_view piece : {first, second}) {
      out.clear();
      JsonWriter w(out);
      w.begin_object().key("type").string("content_block_delta").key("index").number(block);
      w.key("delta").begin_object().key("type").string("input_json_delta").key("partial_json").string(piece);
      w.end_object().end_object();
      event("content_block_delta", out);
    }
    event("content_block_stop", fmt::format(R"({{"type":"content_block_stop","index":{}}})", block));
  }
  std::string delta_usage;
  if (g.usage_json) {
    delta_usage = fmt::format(R"(,"usage":{})", *g.usage_json);
  } else if (!g.omit_usage) {
    delta_usage = fmt::format(R"(,"usage":{{"output_tokens":{}}})", g.completion_tokens);
  }
  event("message_delta",
        fmt::format(R"({{"type":"message_delta","delta":{{"stop_reason":"{}","stop_sequence":null}}{}}})",
                    anthropic_stop_reason(g), delta_usage));
  event("message_stop", R"({"type":"message_stop"})");
  return events;
}

// One content delta event, for replies that repeat it.
std::string openai_text_delta(const ChatCall& call, std::uint64_t n, std::string_view text) {
  std::string out = "data: ";
  JsonWriter w(out);
  w.begin_object().key("id").string(fmt::format("chatcmpl-mock-{}", n)).key("object").string("chat.completion.chunk");
  w.key("created").number(std::int64_t{1700000000}).key("model").string(call.model);
  w.key("choices").begin_array().begin_object().key("index").number(std::int64_t{0});
  w.key("delta").begin_object().key("content").string(text).end_object().key("finish_reason").null();
  w.end_object().end_array().end_object();
  out += "\n\n";
  return out;
}

std::string anthropic_text_delta(std::string_view text) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("type").string("content_block_delta").key("index").number(std::int64_t{0});
  w.key("delta").begin_object().key("type").string("text_delta").key("text").string(text).end_object().end_object();
  return fmt::format("event: content_block_delta\ndata: {}\n\n", out);
}

void write_gemini_usage(JsonWriter& w, const Generated& g, bool final) {
  if (g.omit_usage) return;
  if (g.usage_json) {
    if (final) w.key("usageMetadata").raw(*g.usage_json);
    return;
  }
  w.key("usageMetadata").begin_object().key("promptTokenCount").number(g.prompt_tokens);
  if (final) w.key("candidatesTokenCount").number(g.completion_tokens);
  w.key("totalTokenCount").number(g.prompt_tokens + (final ? g.completion_tokens : 0)).end_object();
}

// One GenerateContentResponse: whole, or one event of a stream. `finish` is
// set on the last.
// With `tools`, the event carries the reply's function calls (Gemini sends each whole).
std::string gemini_response(const ChatCall& call, const Generated& g, std::uint64_t n, std::string_view text,
                            bool finish, bool tools = false) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("candidates").begin_array().begin_object();
  w.key("content").begin_object().key("parts").begin_array();
  if (!text.empty() || !tools || g.tool_calls.empty()) w.begin_object().key("text").string(text).end_object();
  if (tools) {
    for (const MockToolCall& t : g.tool_calls) {
      w.begin_object().key("functionCall").begin_object().key("name").string(t.name);
      w.key("args").raw(t.arguments_json).end_object().end_object();
    }
  }
  w.end_array().key("role").string("model").end_object();
  if (finish) w.key("finishReason").string(g.finish_reason == "length" ? "MAX_TOKENS" : "STOP");
  w.key("index").number(std::int64_t{0}).end_object().end_array();
  write_gemini_usage(w, g, finish);
  w.key("modelVersion").string(call.model).key("responseId").string(fmt::format("mock-{}", n)).end_object();
  return out;
}

std::string gemini_whole(const ChatCall& call, const Generated& g, std::uint64_t n) {
  return gemini_response(call, g, n, g.content, true, true);
}

// Gemini ends each event with CRLF CRLF and sends no end marker: the finish
// reason on the last event is the end.
std::string gemini_event(const std::string& json) { return fmt::format("data: {}\r\n\r\n", json); }

std::vector<std::string> gemini_stream_events(const ChatCall& call, const Generated& g, std::uint64_t n) {
  std::vector<std::string> events;
  const std::vector<std::string> pieces =
      g.content.empty() && !g.tool_calls.empty() ? std::vector<std::string>{} : split_words(g.content);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const bool last = i + 1 == pieces.size() && g.tool_calls.empty();
    events.push_back(gemini_event(gemini_response(call, g, n, pieces[i], last)));
  }
  if (!g.tool_calls.empty()) events.push_back(gemini_event(gemini_response(call, g, n, "", true, true)));
  return events;
}

std::string gemini_text_delta(const ChatCall& call, std::uint64_t n, std::string_view text) {
  Generated g;
  g.omit_usage = true;
  return gemini_event(gemini_response(call, g, n, text, false));
}

// One ConverseStream event as an event-stream message. Bedrock pads each
// payload with a "p" member of varying length; clients ignore it.
std::string bedrock_frame(std::string_view event_type, std::string_view json) {
  const internal::aws::EventHeader headers[] = {
      {internal::aws::kEventTypeHeader, internal::aws::HeaderValue::string(event_type)},
      {internal::aws::kContentTypeHeader, internal::aws::HeaderValue::string("application/json")},
      {internal::aws::kMessageTypeHeader, internal::aws::HeaderValue::string("event")},
  };
  std::string payload(json);
  payload.insert(payload.size() - 1, R"(,"p":"abcdefghijklmnop")");
  return internal::aws::encode_message(headers, payload).value_or(std::string());
}

// An exception message: :exception-type names it, the payload holds its message.
std::string bedrock_exception_frame(std::string_view type, std::string_view json) {
  const internal::aws::EventHeader headers[] = {
      {internal::aws::kExceptionTypeHeader, internal::aws::HeaderValue::string(type)},
      {internal::aws::kContentTypeHeader, internal::aws::HeaderValue::string("application/json")},
      {internal::aws::kMessageTypeHeader, internal::aws::HeaderValue::string("exception")},
  };
  return internal::aws::encode_message(headers, json).value_or(std::string());
}

// Bedrock's message for each exception a ConverseStream can carry.
std::string bedrock_exception_body(std::string_view type) {
  struct Known {
    std::string_view type, message;
  };
  static constexpr Known kKnown[] = {
      {"throttlingException", "Too many requests, please wait before trying again."},
      {"modelStreamErrorException", "The model encountered an error while streaming the response."},
      {"internalServerException",
       "The system encountered an unexpected error during processing. Try your request again."},
      {"serviceUnavailableException", "Bedrock is unable to process your request."},
      {"validationException", "Input is too long for requested model."},
      {"modelTimeoutException", "Model has timed out in processing the request. Try your request again."},
  };
  std::string_view message = "An error occurred.";
  for (const Known& k : kKnown) {
    if (k.type == type) message = k.message;
  }
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("message").string(message).end_object();
  return out;
}

void write_bedrock_usage(JsonWriter& w, const Generated& g) {
  if (g.omit_usage) return;
  if (g.usage_json) {
    w.key("usage").raw(*g.usage_json);
    return;
  }
  w.key("usage").begin_object().key("inputTokens").number(g.prompt_tokens);
  w.key("outputTokens").number(g.completion_tokens).key("totalTokens").number(g.prompt_tokens + g.completion_tokens);
  w.end_object();
}

std::string_view bedrock_stop_reason(const Generated& g) {
  if (!g.tool_calls.empty()) return "tool_use";
  return g.finish_reason == "length" ? "max_tokens" : "end_turn";
}

std::string bedrock_whole(const ChatCall&, const Generated& g, std::uint64_t n) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("output").begin_object().key("message").begin_object().key("role").string("assistant");
  w.key("content").begin_array();
  if (!g.content.empty() || g.tool_calls.empty()) w.begin_object().key("text").string(g.content).end_object();
  for (std::size_t i = 0; i < g.tool_calls.size(); ++i) {
    w.begin_object().key("toolUse").begin_object().key("toolUseId").string(tool_id("tooluse_mock", n, i));
    w.key("name").string(g.tool_calls[i].name).key("input").raw(g.tool_calls[i].arguments_json);
    w.end_object().end_object();
  }
  w.end_array();
  w.end_object().end_object().key("stopReason").string(bedrock_stop_reason(g));
  write_bedrock_usage(w, g);
  w.key("metrics").begin_object().key("latencyMs").number(std::int64_t{42}).end_object().end_object();
  return out;
}

std::string bedrock_text_delta(const ChatCall&, std::uint64_t, std::string_view text) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("contentBlockIndex").number(std::int64_t{0});
  w.key("delta").begin_object().key("text").string(text).end_object().end_object();
  return bedrock_frame("contentBlockDelta", out);
}

std::vector<std::string> bedrock_stream_events(const ChatCall& call, const Generated& g, std::uint64_t n) {
  std::vector<std::string> events;
  events.push_back(bedrock_frame("messageStart", R"({"role":"assistant"})"));
  std::int64_t block = 0;
  if (!g.content.empty() || g.tool_calls.empty()) {
    for (const auto& piece : split_words(g.content)) events.push_back(bedrock_text_delta(call, n, piece));
    events.push_back(bedrock_frame("contentBlockStop", R"({"contentBlockIndex":0})"));
    ++block;
  }
  for (std::size_t i = 0; i < g.tool_calls.size(); ++i, ++block) {
    std::string start;
    {
      JsonWriter w(start);
      w.begin_object().key("contentBlockIndex").number(block).key("start").begin_object().key("toolUse");
      w.begin_object().key("toolUseId").string(tool_id("tooluse_mock", n, i)).key("name").string(g.tool_calls[i].name);
      w.end_object().end_object().end_object();
    }
    events.push_back(bedrock_frame("contentBlockStart", start));
    const auto [first, second] = halves(g.tool_calls[i].arguments_json);
    for (std::string_view piece : {first, second}) {
      std::string delta;
      JsonWriter w(delta);
      w.begin_object().key("contentBlockIndex").number(block).key("delta").begin_object().key("toolUse");
      w.begin_object().key("input").string(piece).end_object().end_object().end_object();
      events.push_back(bedrock_frame("contentBlockDelta", delta));
    }
    events.push_back(bedrock_frame("contentBlockStop", fmt::format(R"({{"contentBlockIndex":{}}})", block)));
  }
  events.push_back(bedrock_frame("messageStop", fmt::format(R"({{"stopReason":"{}"}})", bedrock_stop_reason(g))));
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  write_bedrock_usage(w, g);
  w.key("metrics").begin_object().key("latencyMs").number(std::int64_t{42}).end_object().end_object();
  events.push_back(bedrock_frame("metadata", out));
  return events;
}

// The model of a Bedrock path ("/model/{url-encoded id}/converse" or
// "/converse-stream"), decoded, and whether it streams.
struct BedrockPath {
  std::string model;
  bool stream = false;
};
std::optional<BedrockPath> bedrock_model(std::string_view path) {
  if (!path.starts_with("/model/")) return std::nullopt;
  std::string_view rest = path.substr(7);
  const std::size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view method = rest.substr(slash + 1);
  if (method != "converse" && method != "converse-stream") return std::nullopt;
  BedrockPath out{.stream = method == "converse-stream"};
  const std::string_view id = rest.substr(0, slash);
  auto hex = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
  };
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (id[i] == '%' && i + 2 < id.size() && hex(id[i + 1]) >= 0 && hex(id[i + 2]) >= 0) {
      out.model.push_back(static_cast<char>(hex(id[i + 1]) * 16 + hex(id[i + 2])));
      i += 2;
    } else {
      out.model.push_back(id[i]);
    }
  }
  return out;
}

// Whether a SigV4-signed request's Authorization is the one `keys` give
// for what arrived: its method, Host, path and query, the headers it lists
// as signed, its body and its x-amz-date.
bool bedrock_signature_matches(const std::string& method, std::string_view target, const Headers& headers,
                               std::string_view body, const MockOptions::AwsKeys& keys) {
  const std::string* auth = find_header(headers, "authorization");
  const std::string* date = find_header(headers, "x-amz-date");
  const std::string* host = find_header(headers, "host");
  if (!auth || !date || !host) return false;
  absl::Time when;
  std::string err;
  // "20260115T093000Z"; absl's %Y would take all eight digits as the year.
  if (date->size() != 16) return false;
  const std::string iso = fmt::format("{}-{}-{}T{}:{}:{}", date->substr(0, 4), date->substr(4, 2), date->substr(6, 2),
                                      date->substr(9, 2), date->substr(11, 2), date->substr(13, 2));
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%S", iso, absl::UTCTimeZone(), &when, &err)) return false;
  const std::size_t q = target.find('?');
  internal::aws::SignableRequest request{
      .method = method,
      .host = *host,
      .path = target.substr(0, q),
      .query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1),
      .body = body};
  std::string_view rest = *auth;
  const std::size_t listed = rest.find("SignedHeaders=");
  if (listed == std::string_view::npos) return false;
  rest = rest.substr(listed + 14);
  rest = rest.substr(0, rest.find(','));
  while (!rest.empty()) {
    const std::string_view name = rest.substr(0, rest.find(';'));
    rest.remove_prefix(std::min(rest.size(), name.size() + 1));
    if (name == "host" || name == "x-amz-date" || name == "x-amz-security-token") continue;
    const std::string* value = find_header(headers, name);
    if (!value) return false;
    request.headers.emplace_back(name, *value);
  }
  const internal::aws::AwsCredentials credentials{.access_key_id = keys.access_key_id,
                                                  .secret_access_key = keys.secret_access_key,
                                                  .session_token = keys.session_token};
  auto added = internal::aws::sign_v4(request, credentials, keys.region, "bedrock", when);
  if (!added.ok()) return false;
  for (const auto& [name, value] : *added) {
    if (name == "authorization") return value == *auth;
  }
  return false;
}

// The credential a client presented, as the provider would see it.
std::string presented_key(const Headers& headers) {
  for (std::string_view name : {"authorization", "x-api-key", "api-key", "x-goog-api-key"}) {
    const std::string* value = find_header(headers, name);
    if (!value) continue;
    std::string_view key = internal::trim(*value);
    if (name == "authorization" && internal::istarts_with(key, "bearer ")) key = internal::trim(key.substr(7));
    return std::string(key);
  }
  return {};
}

// An error object that leaks `key` every way a real one has been seen to:
// verbatim in code, type and message, upper-cased, and past the 1024th byte
// of a long message (where a redactor that truncates first would cut it).
std::string echo_key_error(Api api, const std::string& key) {
  std::string upper = key;
  for (char& ch : upper) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 32);
  }
  std::string message = fmt::format(
      "Incorrect API key provided: {}. Keys are case-sensitive; {} is not the same key. "
      "Request details follow.",
      key, upper);
  const std::size_t last_at = 1024 - std::min<std::size_t>(key.size() / 2, 1024);
  if (message.size() < last_at) message.append(last_at - message.size(), '.');
  message += key;
  std::string out;
  JsonWriter w(out);
  if (api == Api::kAnthropic) {
    w.begin_object().key("type").string("error").key("error").begin_object();
    w.key("type").string(key).key("code").string(key).key("message").string(message).end_object().end_object();
  } else if (api == Api::kBedrock) {
    w.begin_object().key("message").string(message).key("__type").string(key).end_object();
  } else if (api == Api::kGemini) {
    w.begin_object().key("error").begin_object().key("code").number(std::int64_t{400}).key("message").string(message);
    w.key("status").string(key).key("details").begin_array().begin_object().key("reason").string(key);
    w.end_object().end_array().end_object().end_object();
  } else {
    w.begin_object().key("error").begin_object().key("message").string(message).key("type").string(key);
    w.key("param").null().key("code").string(key).end_object().end_object();
  }
  return out;
}

// The model of a Gemini path, and whether it streams. Google AI Studio serves
// "/{v1,v1beta,v1alpha}/models/M:method"; Vertex AI serves
// "/{v1,v1beta1}/projects/P/locations/L/publishers/google/models/M:method".
// Any other prefix is a 404 there, and here.
struct GeminiPath {
  std::string model;
  bool stream = false;
};
std::optional<GeminiPath> gemini_model(std::string_view path) {
  const std::size_t models = path.rfind("/models/");
  if (models == std::string_view::npos) return std::nullopt;
  const std::string_view prefix = path.substr(0, models);
  std::vector<std::string_view> parts;
  for (std::string_view rest = prefix; !rest.empty();) {
    rest.remove_prefix(1);  // the '/'
    const std::size_t slash = rest.find('/');
    parts.push_back(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  }
  const bool studio = parts.size() == 1 && (parts[0] == "v1" || parts[0] == "v1beta" || parts[0] == "v1alpha");
  const bool vertex = parts.size() == 7 && (parts[0] == "v1" || parts[0] == "v1beta1") && parts[1] == "projects" &&
                      !parts[2].empty() && parts[3] == "locations" && !parts[4].empty() && parts[5] == "publishers" &&
                      parts[6] == "google";
  if (!studio && !vertex) return std::nullopt;
  std::string_view rest = path.substr(models + 8);
  const std::size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || rest.substr(0, colon).find('/') != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view method = rest.substr(colon + 1);
  if (method != "generateContent" && method != "streamGenerateContent") return std::nullopt;
  return GeminiPath{std::string(rest.substr(0, colon)), method == "streamGenerateContent"};
}

// The API a request's path (with its query) is for, by the real services'
// rules: OpenAI's "/v1/chat/completions" (also under "/openai", as Azure's v1
// API and Groq serve it), Azure's deployment path with its api-version,
// Anthropic's "/v1/messages", Gemini's and Vertex AI's, Bedrock's.
Api api_of(std::string_view target) {
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (path == "/v1/chat/completions" || path == "/openai/v1/chat/completions") return Api::kOpenAI;
  if (path.starts_with("/openai/deployments/") && path.ends_with("/chat/completions")) {
    const std::string_view deployment =
        path.substr(std::strlen("/openai/deployments/"),
                    path.size() - std::strlen("/openai/deployments/") - std::strlen("/chat/completions"));
    const bool versioned = query.starts_with("api-version=") || query.find("&api-version=") != std::string_view::npos;
    return !deployment.empty() && deployment.find('/') == std::string_view::npos && versioned ? Api::kOpenAI
                                                                                              : Api::kUnknown;
  }
  if (path == "/v1/messages") return Api::kAnthropic;
  if (gemini_model(path)) return Api::kGemini;
  if (bedrock_model(path)) return Api::kBedrock;
  return Api::kUnknown;
}

// A 404 as the service the path looks meant for sends it: Google's front
// end answers an unknown path with an HTML page, Anthropic and Azure with
// their JSON errors, OpenAI (and anything else) with "Invalid URL".
struct NotFound {
  std::string_view content_type;
  std::string body;
};
NotFound not_found(std::string_view method, std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.find(":generateContent") != std::string_view::npos ||
      path.find(":streamGenerateContent") != std::string_view::npos) {
    return {"text/html; charset=UTF-8",
            fmt::format("<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not "
                        "Found)!!1</title>\n  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested "
                        "URL <code>{}</code> was not found on this server.  <ins>That\u2019s all we know.</ins>\n",
                        path)};
  }
  if (path.ends_with("/messages")) {
    return {"application/json", R"({"type":"error","error":{"type":"not_found_error","message":"Not Found"}})"};
  }
  if (path.starts_with("/openai/")) {
    return {"application/json", R"({"error":{"code":"404","message":"Resource not found"}})"};
  }
  return {
      "application/json",
      fmt::format(
          R"json({{"error":{{"message":"Invalid URL ({} {})","type":"invalid_request_error","param":null,"code":null}}}})json",
          method, path)};
}

// How one wire API's replies look, for the paths that build them.
struct Dialect {
  std::string (*whole)(const ChatCall&, const Generated&, std::uint64_t);
  std::vector<std::string> (*stream_events)(const ChatCall&, const Generated&, std::uint64_t);
  // One content delta event, for endless streams.
  std::string (*text_delta)(const ChatCall&, std::uint64_t, std::string_view);
  // An error object sent as a mid-stream event.
  std::string (*error_event)(const std::string&);
  std::size_t opening_events;  // stream events before the first content delta
  std::string_view key_header;
  std::string_view rate_limit_body, quota_body, overloaded_body, server_error_body, bad_json_body;
  // The 400 of a model that takes no assistant prefill (MockReply::reject_prefill).
  std::string_view prefill_rejected_body;
  int quota_status, overloaded_status;
  // The 401 (or 400) for a wrong key.
  int bad_key_status;
  std::string (*bad_key_body)(std::string_view presented);
  // A 429 carries retry-after(-ms) headers; Gemini's says when in its body (RetryInfo).
  bool retry_headers = true;
  std::string_view stream_content_type = "text/event-stream";
  // AWS: the exception each error reply names in x-amzn-errortype ("" = no header).
  std::string_view rate_limit_type, quota_type, overloaded_type, server_error_type, bad_json_type, bad_key_type;
};

std::string openai_whole(const ChatCall& call, const Generated& g, std::uint64_t n) {
  return openai_completion(call, g, n);
}
std::string openai_delta(const ChatCall& call, std::uint64_t n, std::string_view text) {
  return openai_text_delta(call, n, text);
}
std::string anthropic_delta(const ChatCall&, std::uint64_t, std::string_view text) {
  return anthropic_text_delta(text);
}

const Dialect& dialect_of(Api api) {
  static const Dialect openai_dialect{
      .whole = openai_whole,
      .stream_events = openai_stream_events,
      .text_delta = openai_delta,
      .error_event = [](const std::string& error) { return fmt::format("data: {}\n\n", error); },
      .opening_events = 1,
      .key_header = "authorization",
      .rate_limit_body = kOpenAIRateLimit,
      .quota_body = kOpenAIQuota,
      .overloaded_body = kOpenAIOverloaded,
      .server_error_body = kOpenAIServerError,
      .bad_json_body =
          R"json({"error":{"message":"We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)","type":"invalid_request_error","param":null,"code":null}})json",
      .prefill_rejected_body =
          R"({"error":{"message":"This model does not support assistant message prefill. The conversation must end with a user message.","type":"invalid_request_error","param":null,"code":null}})",
      .quota_status = 429,
      .overloaded_status = 503,
      .bad_key_status = 401,
      .bad_key_body =
          [](std::string_view presented) {
            return fmt::format(
                R"({{"error":{{"message":"Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}})",
                presented);
          },
  };
  static const Dialect anthropic_dialect{
      .whole = anthropic_message,
      .stream_events = anthropic_stream_events,
      .text_delta = anthropic_delta,
      .error_event = [](const std::string& error) { return fmt::format("event: error\ndata: {}\n\n", error); },
      .opening_events = 2,
      .key_header = "x-api-key",
      .rate_limit_body = kAnthropicRateLimit,
      .quota_body = kAnthropicQuota,
      .overloaded_body = kAnthropicOverloaded,
      .server_error_body = kAnthropicServerError,
      .bad_json_body =
          R"({"type":"error","error":{"type":"invalid_request_error","message":"The request body is not valid JSON"}})",
      .prefill_rejected_body =
          R"({"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."},"request_id":"req_011CbPrefillMock"})",
      .quota_status = 400,
      .overloaded_status = 529,
      .bad_key_status = 401,
      .bad_key_body =
          [](std::string_view) {
            return std::string(
                R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})");
          },
  };
  static const Dialect gemini_dialect{
      .whole = gemini_whole,
      .stream_events = gemini_stream_events,
      .text_delta = gemini_text_delta,
      .error_event = gemini_event,
      .opening_events = 0,
      .key_header = "x-goog-api-key",
      .rate_limit_body = kGeminiRateLimit,
      .quota_body = kGeminiQuota,
      .overloaded_body = kGeminiOverloaded,
      .server_error_body = kGeminiServerError,
      .bad_json_body = kGeminiBadJson,
      .prefill_rejected_body =
          R"({"error":{"code":400,"message":"Please ensure that multiturn requests ends with a user role or a function response.","status":"INVALID_ARGUMENT"}})",
      .quota_status = 429,
      .overloaded_status = 503,
      .bad_key_status = 400,  // Gemini answers a wrong key with 400 API_KEY_INVALID
      .bad_key_body = [](std::string_view) { return std::string(kGeminiBadKey); },
      .retry_headers = false,
  };
  static const Dialect bedrock_dialect{
      .whole = bedrock_whole,
      .stream_events = bedrock_stream_events,
      .text_delta = bedrock_text_delta,
      .error_event = [](const std::string& error) { return bedrock_exception_frame("validationException", error); },
      .opening_events = 1,
      .key_header = "authorization",
      .rate_limit_body = kBedrockRateLimit,
      .quota_body = kBedrockQuota,
      .overloaded_body = kBedrockOverloaded,
      .server_error_body = kBedrockServerError,
      .bad_json_body = kBedrockBadJson,
      .prefill_rejected_body =
          R"({"message":"This model does not support assistant message prefill. The conversation must end with a user message."})",
      .quota_status = 400,
      .overloaded_status = 503,
      .bad_key_status = 403,
      .bad_key_body = [](std::string_view) { return std::string(kBedrockBadKey); },
      .retry_headers = false,  // Bedrock says neither when nor how long
      .stream_content_type = "application/vnd.amazon.eventstream",
      .rate_limit_type = "ThrottlingException",
      .quota_type = "ServiceQuotaExceededException",
      .overloaded_type = "ServiceUnavailableException",
      .server_error_type = "InternalServerException",
      .bad_json_type = "ValidationException",
      .bad_key_type = "UnrecognizedClientException",
  };
  switch (api) {
    case Api::kBedrock:
      return bedrock_dialect;
    case Api::kAnthropic:
      return anthropic_dialect;
    case Api::kGemini:
      return gemini_dialect;
    default:
      return openai_dialect;
  }
}

struct Step {
  // kRepeat writes `data` every `every` until the connection closes.
  enum class Kind { kWrite, kRepeat, kReset, kClose, kDone };
  Kind kind = Kind::kWrite;
  milliseconds delay{0};
  std::string data;
  milliseconds every{0};
};

struct Conn {
  int fd = -1;
  std::uint64_t generation = 0;
  std::string in;
  std::string out;
  std::size_t out_offset = 0;
  std::deque<Step> steps;
  bool busy = false;     // a response is being produced
  bool counted = false;  // ... to a request counted in MockStats::in_flight
  bool hanging = false;  // ... that is never answered
  bool close_after_flush = false;
  bool waiting_timer = false;
  bool waiting_flush = false;  // a kRepeat step waits for `out` to drain
  bool want_write = false;
};

struct Request {
  std::string method, path;
  Headers headers;
  std::string body;
  bool keep_alive = true;
};

// Parses one request from the front of `in`; returns bytes consumed, 0 if
// incomplete, npos if malformed.
std::size_t parse_request(std::string_view in, Request& req) {
  const std::size_t header_end = in.find("\r\n\r\n");
  if (header_end == std::string_view::npos) return in.size() > (64u << 10) ? std::string_view::npos : 0;
  std::string_view head = in.substr(0, header_end);
  std::size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  auto sp1 = request_line.find(' ');
  auto sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return std::string_view::npos;
  req.method.assign(request_line.substr(0, sp1));
  req.path.assign(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  req.keep_alive = request_line.substr(sp2 + 1) != "HTTP/1.0";
  std::size_t content_length = 0;
  std::size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = internal::to_lower(internal::trim(line.substr(0, colon)));
    std::string_view value = internal::trim(line.substr(colon + 1));
    if (name == "content-length") {
      auto n = internal::parse_int(value);
      if (!n || *n < 0) return std::string_view::npos;
      content_length = static_cast<std::size_t>(*n);
    } else if (name == "transfer-encoding") {
      return std::string_view::npos;  // clients of the mock send Content-Length
    } else if (name == "connection" && internal::iequals(value, "close")) {
      req.keep_alive = false;
    }
    req.headers.emplace_back(std::move(name), std::string(value));
  }
  const std::size_t total = header_end + 4 + content_length;
  if (in.size() < total) return 0;
  req.body.assign(in.substr(header_end + 4, content_length));
  return total;
}

}  // namespace

Result<FaultMix> parse_fault_mix(std::string_view spec) {
  FaultMix mix;
  double sum = 0;
  std::size_t pos = 0;
  while (pos < spec.size()) {
    std::size_t comma = spec.find(',', pos);
    if (comma == std::string_view::npos) comma = spec.size();
    std::string_view item = internal::trim(spec.substr(pos, comma - pos));
    pos = comma + 1;
    if (item.empty()) continue;
    auto eq = item.find('=');
    auto bad = [](std::string message) { return make_error(ErrorCategory::kBadRequest, std::move(message)); };
    if (eq == std::string_view::npos) {
      return bad(fmt::format("fault \"{}\" needs =probability", item));
    }
    std::string_view name = item.substr(0, eq);
    auto value = internal::parse_double(item.substr(eq + 1));
    if (name == "retry_after_ms") {
      if (!value || *value < 0) {
        return bad("retry_after_ms must be a non-negative number");
      }
      mix.retry_after = milliseconds(static_cast<std::int64_t>(*value));
      continue;
    }
    if (!value || *value < 0 || *value > 1) {
      return bad(fmt::format("fault \"{}\": probability must be in [0, 1]", name));
    }
    double* slot = name == "rate_limit"     ? &mix.rate_limit
                   : name == "quota"        ? &mix.quota
                   : name == "overloaded"   ? &mix.overloaded
                   : name == "server_error" ? &mix.server_error
                   : name == "bad_gateway"  ? &mix.bad_gateway
                   : name == "hang"         ? &mix.hang
                   : name == "reset"        ? &mix.reset
                                            : nullptr;
    if (!slot) {
      return bad(
          fmt::format("unknown fault \"{}\" (rate_limit, quota, overloaded, server_error, bad_gateway, "
                      "hang, reset, retry_after_ms)",
                      name));
    }
    *slot = *value;
    sum += *value;
  }
  if (sum > 1.0 + 1e-9) {
    return make_error(ErrorCategory::kBadRequest, "fault probabilities add up to more than 1");
  }
  return mix;
}

struct MockServer::Impl {
  MockOptions options;
  int listen_fd = -1;
  int epoll_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::thread thread;
  std::atomic<bool> stopping{false};

  mutable std::mutex mu;  // guards queues, stats, recent
  std::unordered_map<std::string, std::deque<MockReply>> queues;
  MockStats stats;
  std::deque<RecordedRequest> recent;
  std::size_t hold_count = 0;  // requests whose answers wait for one another

  // Loop thread only.
  std::unordered_map<int, Conn> conns;
  std::uint64_t next_generation = 1;
  std::uint64_t next_response_id = 1;
  std::mt19937_64 rng;
  struct Timer {
    Clock::time_point due;
    int fd;
    std::uint64_t generation;
    bool operator>(const Timer& o) const { return due > o.due; }
  };
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  std::vector<std::pair<int, std::uint64_t>> held;  // (fd, generation)

  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (wake_fd >= 0) ::close(wake_fd);
  }

  Status open_socket();
  void run();
  void accept_all();
  void on_readable(Conn& c);
  void process_input(Conn& c);
  void run_steps(Conn& c);
  bool hold(Conn& c);
  void flush(Conn& c);
  void close_conn(int fd, bool reset);
  void set_write_interest(Conn& c, bool on);
  std::deque<Step> respond(const Request& req);
  void uncount(Conn& c);  // its request is answered (or its connection gone)
  std::deque<Step> respond_chat(const Request& req, Api api);
  std::deque<Step> respond_control(const Request& req);
  std::optional<MockReply> next_scripted(const std::string& model);
  MockReply random_fault(Api api, const std::string& model);
};

namespace {

Error sys_error(std::string_view what) {
  return make_error(ErrorCategory::kConnection, fmt::format("{}: {}", what, std::strerror(errno)));
}

std::string head_for(int status, const Headers& headers, std::string_view content_type,
                     std::optional<std::size_t> content_length, bool keep_alive) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
  bool has_type = false;
  for (const auto& [k, v] : headers) {
    if (internal::iequals(k, "content-type")) has_type = true;
    out += fmt::format("{}: {}\r\n", k, v);
  }
  if (!has_type) out += fmt::format("content-type: {}\r\n", content_type);
  if (content_length) {
    out += fmt::format("content-length: {}\r\n", *content_length);
  } else {
    out += "transfer-encoding: chunked\r\n";
  }
  if (!keep_alive) out += "connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string chunked(std::string_view data) { return fmt::format("{:x}\r\n{}\r\n", data.size(), data); }

}  // namespace

Status MockServer::Impl::open_socket() {
  listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) return sys_error("socket");
  int one = 1;
  ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(options.port));
  if (::inet_pton(AF_INET, options.host.c_str(), &addr.sin_addr) != 1) {
    return make_error(ErrorCategory::kBadRequest, fmt::format("host \"{}\" is not an IPv4 address", options.host));
  }
  if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return sys_error("bind");
  if (::listen(listen_fd, 4096) != 0) return sys_error("listen");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd < 0 || wake_fd < 0) return sys_error("epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
  ev.data.fd = wake_fd;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
  rng.seed(options.seed);
  return ok_status();
}

void MockServer::Impl::run() {
  std::vector<epoll_event> events(256);
  while (!stopping.load(std::memory_order_relaxed)) {
    int timeout_ms = -1;
    if (!timers.empty()) {
      auto wait = std::chrono::ceil<milliseconds>(timers.top().due - Clock::now());
      timeout_ms = static_cast<int>(std::max<std::int64_t>(0, wait.count()));
    }
    int n = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listen_fd) {
        accept_all();
        continue;
      }
      if (fd == wake_fd) continue;
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        on_readable(it->second);
        it = conns.find(fd);
        if (it == conns.end()) continue;
      }
      if (events[i].events & EPOLLOUT) flush(it->second);
    }
    const auto now = Clock::now();
    while (!timers.empty() && timers.top().due <= now) {
      Timer t = timers.top();
      timers.pop();
      auto it = conns.find(t.fd);
      if (it == conns.end() || it->second.generation != t.generation) continue;
      it->second.waiting_timer = false;
      run_steps(it->second);
    }
  }
  for (auto& [fd, c] : conns) ::close(fd);
  conns.clear();
}

void MockServer::Impl::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    {
      std::lock_guard lock(mu);
      ++stats.connections;
    }
    Conn& c = conns[fd];
    c = Conn{};
    c.fd = fd;
    c.generation = next_generation++;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  }
}

void MockServer::Impl::on_readable(Conn& c) {
  char buf[16384];
  for (;;) {
    ssize_t r = ::read(c.fd, buf, sizeof buf);
    if (r > 0) {
      c.in.append(buf, static_cast<std::size_t>(r));
      continue;
    }
    if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      close_conn(c.fd, false);
      return;
    }
    if (errno == EINTR) continue;
    break;
  }
  process_input(c);
}

void MockServer::Impl::process_input(Conn& c) {
  while (!c.busy && !c.in.empty()) {
    Request req;
    const std::size_t used = parse_request(c.in, req);
    if (used == 0) return;
    if (used == std::string_view::npos) {
      std::string body = R"({"error":{"message":"malformed HTTP request","type":"invalid_request_error"}})";
      c.steps.push_back({Step::Kind::kWrite, {}, head_for(400, {}, "application/json", body.size(), false) + body});
      c.steps.push_back({Step::Kind::kClose});
      c.in.clear();
    } else {
      c.in.erase(0, used);
      if (!req.path.starts_with("/_mock/")) {
        std::lock_guard lock(mu);
        stats.max_in_flight = std::max(stats.max_in_flight, ++stats.in_flight);
        c.counted = true;
      }
      c.steps = respond(req);
      // A request never answered (hang) stays in flight until its connection goes.
      c.hanging = c.steps.empty();
      if (!req.keep_alive) c.steps.push_back({Step::Kind::kClose});
      c.steps.push_back({Step::Kind::kDone});
    }
    c.busy = true;
    const int fd = c.fd;
    if (hold(c)) return;
    run_steps(c);
    auto it = conns.find(fd);
    if (it == conns.end() || &it->second != &c) return;  // closed by a step
  }
}

bool MockServer::Impl::hold(Conn& c) {
  {
    std::lock_guard lock(mu);
    if (hold_count == 0) return false;
    held.emplace_back(c.fd, c.generation);
    if (held.size() < hold_count) return true;
    hold_count = 0;
  }
  auto burst = std::move(held);
  held.clear();
  for (auto [fd, generation] : burst) {
    auto it = conns.find(fd);
    if (it == conns.end() || it->second.generation != generation) continue;
    run_steps(it->second);
  }
  return true;
}

void MockServer::Impl::run_steps(Conn& c) {
  const int fd = c.fd;
  while (!c.steps.empty()) {
    Step& s = c.steps.front();
    if (s.delay.count() > 0) {
      timers.push({Clock::now() + s.delay, fd, c.generation});
      s.delay = milliseconds(0);
      c.waiting_timer = true;
      return;
    }
    Step step = std::move(s);
    c.steps.pop_front();
    switch (step.kind) {
      case Step::Kind::kWrite:
        c.out += step.data;
        flush(c);
        if (!conns.contains(fd)) return;
        break;
      case Step::Kind::kRepeat: {
        // One piece in flight at a time: a client that reads slowly (or not
        // at all) cannot make the mock buffer without bound.
        if (!c.out.empty()) {
          c.steps.push_front(std::move(step));
          c.waiting_flush = true;
          return;
        }
        c.out += step.data;
        const milliseconds every = step.every;
        c.steps.push_front(std::move(step));
        flush(c);
        if (!conns.contains(fd)) return;
        // Back to the loop even without a drip, so that the client's hang-up
        // and the other connections are served.
        timers.push({Clock::now() + every, fd, c.generation});
        c.waiting_timer = true;
        return;
      }
      case Step::Kind::kReset:
        close_conn(fd, true);
        return;
      case Step::Kind::kClose:
        c.close_after_flush = true;
        flush(c);
        return;
      case Step::Kind::kDone:
        c.busy = false;
        if (!c.hanging) uncount(c);
        break;
    }
  }
}

void MockServer::Impl::flush(Conn& c) {
  while (c.out_offset < c.out.size()) {
    ssize_t w = ::send(c.fd, c.out.data() + c.out_offset, c.out.size() - c.out_offset, MSG_NOSIGNAL);
    if (w > 0) {
      c.out_offset += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_write_interest(c, true);
      return;
    }
    close_conn(c.fd, false);
    return;
  }
  c.out.clear();
  c.out_offset = 0;
  set_write_interest(c, false);
  if (c.close_after_flush) {
    close_conn(c.fd, false);
    return;
  }
  if (c.waiting_flush) {
    c.waiting_flush = false;
    run_steps(c);
    return;
  }
  if (!c.busy && !c.in.empty()) process_input(c);
}

void MockServer::Impl::set_write_interest(Conn& c, bool on) {
  if (c.want_write == on) return;
  c.want_write = on;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u);
  ev.data.fd = c.fd;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
}

void MockServer::Impl::close_conn(int fd, bool reset) {
  if (reset) {
    linger l{1, 0};  // close() then sends RST instead of FIN
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  if (auto it = conns.find(fd); it != conns.end()) uncount(it->second);
  conns.erase(fd);
}

void MockServer::Impl::uncount(Conn& c) {
  if (!c.counted) return;
  c.counted = false;
  std::lock_guard lock(mu);
  if (stats.in_flight > 0) --stats.in_flight;
}

std::optional<MockReply> MockServer::Impl::next_scripted(const std::string& model) {
  std::lock_guard lock(mu);
  for (const std::string* key : {&model, static_cast<const std::string*>(nullptr)}) {
    auto it = queues.find(key ? *key : std::string("*"));
    if (it != queues.end() && !it->second.empty()) {
      MockReply r = std::move(it->second.front());
      it->second.pop_front();
      return r;
    }
  }
  return std::nullopt;
}

namespace {

// Names an AWS error reply's exception the way Bedrock does.
void add_error_type(MockReply& r, std::string_view type) {
  if (!type.empty()) r.headers.emplace_back("x-amzn-errortype", fmt::format("{}{}", type, kBedrockErrorTypeSuffix));
}

}  // namespace

MockReply MockServer::Impl::random_fault(Api api, const std::string& model) {
  const FaultMix& f = options.faults;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  double u = unit(rng);
  MockReply r;
  auto take = [&u](double p) {
    if (u < p) return true;
    u -= p;
    return false;
  };
  const Dialect& d = dialect_of(api);
  auto filled = [&](std::string_view body) {
    std::string out(body);
    const std::string delay = std::to_string((f.retry_after.count() + 999) / 1000);
    for (const auto& [field, value] : {std::pair<std::string_view, std::string_view>{"{MODEL}", model},
                                       std::pair<std::string_view, std::string_view>{"{DELAY}", delay}}) {
      for (std::size_t at = 0; (at = out.find(field, at)) != std::string::npos; at += value.size()) {
        out.replace(at, field.size(), value);
      }
    }
    return out;
  };
  if (take(f.rate_limit)) {
    r.status = 429;
    if (d.retry_headers) {
      r.headers.emplace_back("retry-after-ms", std::to_string(f.retry_after.count()));
      r.headers.emplace_back("retry-after", std::to_string((f.retry_after.count() + 999) / 1000));
    }
    r.body = filled(d.rate_limit_body);
    add_error_type(r, d.rate_limit_type);
  } else if (take(f.quota)) {
    r.status = d.quota_status;
    r.body = std::string(d.quota_body);
    add_error_type(r, d.quota_type);
  } else if (take(f.overloaded)) {
    r.status = d.overloaded_status;
    r.body = std::string(d.overloaded_body);
    add_error_type(r, d.overloaded_type);
  } else if (take(f.server_error)) {
    r.status = 500;
    r.body = std::string(d.server_error_body);
    add_error_type(r, d.server_error_type);
  } else if (take(f.bad_gateway)) {
    r.status = 502;
    r.headers.emplace_back("content-type", "text/html");
    r.headers.emplace_back("server", "nginx");
    r.body = std::string(kNginxBadGateway);
  } else if (take(f.hang)) {
    r.hang = true;
  } else if (take(f.reset)) {
    r.reset_after_bytes = 20;
  }
  return r;
}

std::deque<Step> MockServer::Impl::respond(const Request& req) {
  {
    std::lock_guard lock(mu);
    recent.push_back({req.method, req.path, req.headers, req.body});
    if (recent.size() > 256) recent.pop_front();
  }
  std::string_view path = req.path;
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  if (path.starts_with("/_mock/")) return respond_control(req);
  const Api api = req.method == "POST" ? api_of(req.path) : Api::kUnknown;
  if (api == Api::kUnknown) {
    {
      std::lock_guard lock(mu);
      ++stats.requests;
    }
    const NotFound nf = not_found(req.method, req.path);
    std::deque<Step> steps;
    steps.push_back({Step::Kind::kWrite, {}, head_for(404, {}, nf.content_type, nf.body.size(), true) + nf.body});
    return steps;
  }
  return respond_chat(req, api);
}

std::deque<Step> MockServer::Impl::respond_chat(const Request& req, Api api) {
  ChatCall call = read_chat_call(req.body, api);
  const Dialect& dialect = dialect_of(api);
  if (api == Api::kGemini) {
    std::string_view path = req.path;
    const auto gemini = gemini_model(path.substr(0, path.find('?')));
    call.model = gemini->model;  // the model and streaming are in the URL
    call.stream = gemini->stream;
  } else if (api == Api::kBedrock) {
    const auto bedrock = bedrock_model(std::string_view(req.path).substr(0, req.path.find('?')));
    call.model = bedrock->model;
    call.stream = bedrock->stream;
  }
  if (call.model.empty() && req.path.starts_with("/openai/deployments/")) {
    std::string_view rest = std::string_view(req.path).substr(std::strlen("/openai/deployments/"));
    call.model.assign(rest.substr(0, rest.find('/')));
  }
  std::optional<MockReply> scripted = next_scripted(call.model);
  MockReply reply = scripted ? std::move(*scripted) : random_fault(api, call.model);
  std::uint64_t response_id;
  {
    std::lock_guard lock(mu);
    ++stats.requests;
    ++stats.by_model[call.model];
    response_id = next_response_id++;
  }
  std::deque<Step> steps;
  if (reply.hang) return steps;  // never answer; the client gives up
  if (reply.raw) {
    steps.push_back({Step::Kind::kWrite, reply.delay, *reply.raw});
    steps.push_back({Step::Kind::kClose});
    return steps;
  }
  if (reply.echo_key) {
    const std::string error = echo_key_error(api, presented_key(req.headers));
    if (!call.stream || reply.status != 200) {
      reply.body = error;
    } else {
      // A stream that starts well, then fails mid-way with the key in its error event.
      steps.push_back({Step::Kind::kWrite, reply.delay,
                       head_for(reply.status, reply.headers, dialect.stream_content_type, std::nullopt, true)});
      Generated g = generate(call, reply);
      std::vector<std::string> events = dialect.stream_events(call, g, response_id);
      events.resize(std::min(events.size(), dialect.opening_events + 1));  // the opening events and one content delta
      if (api == Api::kGemini) {
        // Gemini's one content event carried the finish reason; the error comes before any end.
        events = {gemini_text_delta(call, response_id, g.content)};
      }
      events.push_back(dialect.error_event(error));
      for (const auto& e : events) steps.push_back({Step::Kind::kWrite, reply.drip, chunked(e)});
      steps.push_back({Step::Kind::kWrite, {}, "0\r\n\r\n"});
      return steps;
    }
  }

  bool signed_ok = false;  // a SigV4 signature checked against MockOptions::aws
  if (const std::string* auth = find_header(req.headers, "authorization");
      api == Api::kBedrock && options.aws && auth && auth->starts_with("AWS4-HMAC-SHA256 ") && !reply.body &&
      reply.status == 200) {
    signed_ok = bedrock_signature_matches(req.method, req.path, req.headers, req.body, *options.aws);
    if (!signed_ok) {
      reply.status = 403;
      reply.body = std::string(kBedrockBadSignature);
      add_error_type(reply, "InvalidSignatureException");
    }
  }
  if (!options.require_key.empty() && !reply.body && reply.status == 200 && !signed_ok) {
    // Vertex AI takes a bearer token where Google AI Studio takes x-goog-api-key.
    const std::string* auth = find_header(req.headers, dialect.key_header);
    if (!auth && api == Api::kGemini) auth = find_header(req.headers, "authorization");
    std::string presented = auth ? *auth : "";
    if (presented.starts_with("Bearer ")) presented.erase(0, 7);
    if (presented != options.require_key) {
      reply.status = dialect.bad_key_status;
      reply.body = dialect.bad_key_body(presented);
      add_error_type(reply, dialect.bad_key_type);
    }
  }
  if (reply.reject_prefill && !reply.body && reply.status == 200 &&
      (call.last_role == "assistant" || call.last_role == "model")) {
    reply.status = 400;
    reply.body = std::string(dialect.prefill_rejected_body);
    add_error_type(reply, dialect.bad_json_type);
  }
  if (call.tool_blocks && !call.tool_config && !reply.body && reply.status == 200) {
    reply.status = 400;  // Bedrock's own validation of a tool exchange
    reply.body =
        R"({"message":"The toolConfig field must be defined when using toolUse and toolResult content blocks."})";
    add_error_type(reply, dialect.bad_json_type);
  }
  if (!call.valid_json && !reply.body && reply.status == 200) {
    reply.status = 400;
    reply.body = std::string(dialect.bad_json_body);
    add_error_type(reply, dialect.bad_json_type);
  }

  std::vector<std::string> pieces;      // body pieces; streamed ones are SSE events
  std::optional<std::string> repeated;  // an endless stream's delta, sent after `pieces` forever
  bool streaming = false;
  if (reply.body) {
    pieces.push_back(*reply.body);
  } else {
    Generated g = generate(call, reply);
    {
      std::lock_guard lock(mu);
      stats.prompt_tokens += static_cast<std::uint64_t>(g.prompt_tokens);
      stats.completion_tokens += static_cast<std::uint64_t>(g.completion_tokens);
    }
    if (reply.endless) {
      streaming = true;
      pieces = dialect.stream_events(call, g, response_id);
      pieces.resize(dialect.opening_events);  // what comes before the first content delta
      const std::string_view text = reply.content.empty() ? std::string_view("more ") : std::string_view(reply.content);
      repeated = dialect.text_delta(call, response_id, text);
    } else if (call.stream) {
      streaming = true;
      pieces = dialect.stream_events(call, g, response_id);
      if (reply.stream_exception) {
        const std::size_t kept =
            dialect.opening_events + static_cast<std::size_t>(std::max(0, reply.stream_exception_deltas));
        pieces.resize(std::min(pieces.size(), kept));
        pieces.push_back(
            bedrock_exception_frame(*reply.stream_exception, bedrock_exception_body(*reply.stream_exception)));
      }
      if (reply.corrupt_crc_event && *reply.corrupt_crc_event >= 0 &&
          static_cast<std::size_t>(*reply.corrupt_crc_event) < pieces.size()) {
        std::string& frame = pieces[static_cast<std::size_t>(*reply.corrupt_crc_event)];
        if (!frame.empty()) frame.back() = static_cast<char>(frame.back() ^ 0x5A);
      }
    } else {
      pieces.push_back(dialect.whole(call, g, response_id));
    }
  }

  std::string head;
  if (streaming) {
    head = head_for(reply.status, reply.headers, dialect.stream_content_type, std::nullopt, true);
  } else {
    head = head_for(reply.status, reply.headers, "application/json", pieces.front().size(), true);
  }
  steps.push_back({Step::Kind::kWrite, reply.delay, std::move(head)});

  if (reply.reset_after_bytes) {
    std::string all;
    for (const auto& p : pieces) all += streaming ? chunked(p) : p;
    all.resize(std::min(all.size(), *reply.reset_after_bytes));
    steps.push_back({Step::Kind::kWrite, reply.drip, std::move(all)});
    steps.push_back({Step::Kind::kReset});
    return steps;
  }
  if (streaming) {
    int sent = 0;
    for (auto& p : pieces) {
      if (reply.truncate_after_events && sent == *reply.truncate_after_events) {
        steps.push_back({Step::Kind::kClose});
        return steps;
      }
      if (reply.stall_after_events && sent == *reply.stall_after_events) return steps;  // open, silent
      steps.push_back({Step::Kind::kWrite, sent == 0 ? milliseconds(0) : reply.drip, chunked(p)});
      ++sent;
    }
    if (repeated) {
      steps.push_back(
          {.kind = Step::Kind::kRepeat, .delay = reply.drip, .data = chunked(*repeated), .every = reply.drip});
      return steps;
    }
    steps.push_back({Step::Kind::kWrite, {}, "0\r\n\r\n"});
    return steps;
  }
  if (reply.drip.count() > 0) {
    const std::size_t piece = reply.chunk_bytes ? reply.chunk_bytes : 16;
    const std::string& body = pieces.front();
    for (std::size_t at = 0; at < body.size(); at += piece) {
      steps.push_back({Step::Kind::kWrite, reply.drip, body.substr(at, piece)});
    }
    return steps;
  }
  steps.back().data += pieces.front();
  return steps;
}

std::deque<Step> MockServer::Impl::respond_control(const Request& req) {
  std::string body;
  int status = 200;
  if (req.path == "/_mock/script" && req.method == "POST") {
    auto script = parse_script(req.body);
    if (script.ok()) {
      for (auto& [model, reply] : *script) {
        std::lock_guard lock(mu);
        queues[model].push_back(std::move(reply));
      }
      body = fmt::format(R"({{"queued":{}}})", script->size());
    } else {
      status = 400;
      body = "{\"error\":";
      internal::append_json_string(body, script.error().message);
      body += "}";
    }
  } else if (req.path == "/_mock/stats") {
    std::lock_guard lock(mu);
    JsonWriter w(body);
    w.begin_object().key("requests").number(static_cast<std::int64_t>(stats.requests));
    w.key("connections").number(static_cast<std::int64_t>(stats.connections));
    w.key("max_in_flight").number(static_cast<std::int64_t>(stats.max_in_flight));
    w.key("prompt_tokens").number(static_cast<std::int64_t>(stats.prompt_tokens));
    w.key("completion_tokens").number(static_cast<std::int64_t>(stats.completion_tokens));
    w.key("by_model").begin_object();
    for (const auto& [m, n] : stats.by_model) w.key(m).number(static_cast<std::int64_t>(n));
    w.end_object().end_object();
  } else if (req.path == "/_mock/reset" && req.method == "POST") {
    std::lock_guard lock(mu);
    queues.clear();
    const std::uint64_t open = stats.in_flight;  // those still being answered are counted down later
    stats = {};
    stats.in_flight = open;
    recent.clear();
    body = "{}";
  } else {
    status = 404;
    body = R"({"error":"unknown control path"})";
  }
  std::deque<Step> steps;
  steps.push_back({Step::Kind::kWrite, {}, head_for(status, {}, "application/json", body.size(), true) + body});
  return steps;
}

Result<std::vector<std::pair<std::string, MockReply>>> parse_script(std::string_view json) {
  auto fail = [](std::string m) { return make_error(ErrorCategory::kBadRequest, std::move(m)); };
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::array items;
  if (parser.parse(padded).get_array().get(items) != simdjson::SUCCESS) {
    return fail("a script is a JSON array of reply objects");
  }
  std::vector<std::pair<std::string, MockReply>> out;
  for (auto item : items) {
    simdjson::dom::object o;
    if (item.get_object().get(o) != simdjson::SUCCESS) return fail("each script entry must be an object");
    std::string model = "*";
    MockReply r;
    std::int64_t times = 1;
    for (auto [key, value] : o) {
      std::int64_t n = 0;
      std::string_view s;
      bool b = false;
      if (key == "model" && value.get_string().get(s) == simdjson::SUCCESS) model.assign(s);
      else if (key == "status" && value.get_int64().get(n) == simdjson::SUCCESS) r.status = static_cast<int>(n);
      else if (key == "body" && value.get_string().get(s) == simdjson::SUCCESS) r.body = std::string(s);
      else if (key == "content" && value.get_string().get(s) == simdjson::SUCCESS) r.content.assign(s);
      else if (key == "delay_ms" && value.get_int64().get(n) == simdjson::SUCCESS) r.delay = milliseconds(n);
      else if (key == "drip_ms" && value.get_int64().get(n) == simdjson::SUCCESS) r.drip = milliseconds(n);
      else if (key == "chunk_bytes" && value.get_int64().get(n) == simdjson::SUCCESS)
        r.chunk_bytes = static_cast<std::size_t>(n);
      else if (key == "reset_after_bytes" && value.get_int64().get(n) == simdjson::SUCCESS)
        r.reset_after_bytes = static_cast<std::size_t>(n);
      else if (key == "hang" && value.get_bool().get(b) == simdjson::SUCCESS) r.hang = b;
      else if (key == "truncate_after_events" && value.get_int64().get(n) == simdjson::SUCCESS)
        r.truncate_after_events = static_cast<int>(n);
      else if (key == "stall_after_events" && value.get_int64().get(n) == simdjson::SUCCESS)
        r.stall_after_events = static_cast<int>(n);
      else if (key == "times" && value.get_int64().get(n) == simdjson::SUCCESS) times = n;
      else if (key == "endless" && value.get_bool().get(b) == simdjson::SUCCESS) r.endless = b;
      else if (key == "omit_usage" && value.get_bool().get(b) == simdjson::SUCCESS) r.omit_usage = b;
      else if (key == "echo_key" && value.get_bool().get(b) == simdjson::SUCCESS) r.echo_key = b;
      else if (key == "reject_prefill" && value.get_bool().get(b) == simdjson::SUCCESS) r.reject_prefill = b;
      else if (key == "stream_exception" && value.get_string().get(s) == simdjson::SUCCESS)
        r.stream_exception = std::string(s);
      else if (key == "stream_exception_deltas" && value.get_int64().get(n) == simdjson::SUCCESS)
        r.stream_exception_deltas = static_cast<int>(n);
      else if (key == "corrupt_crc_event" && value.get_int64().get(n) == simdjson::SUCCESS)
        r.corrupt_crc_event = static_cast<int>(n);
      else if (key == "completion_tokens" && value.get_int64().get(n) == simdjson::SUCCESS) r.completion_tokens = n;
      else if (key == "raw" && value.get_string().get(s) == simdjson::SUCCESS) r.raw = std::string(s);
      else if (key == "usage")
        r.usage = value.is_string() ? std::string(value.get_string().value_unsafe()) : simdjson::minify(value);
      else if (simdjson::dom::array calls; key == "tool_calls" && value.get_array().get(calls) == simdjson::SUCCESS) {
        for (auto c : calls) {
          std::string_view name;
          simdjson::dom::element arguments;
          if (c["name"].get_string().get(name) != simdjson::SUCCESS || name.empty()) {
            return fail("a tool call needs a \"name\"");
          }
          MockToolCall& call = r.tool_calls.emplace_back(MockToolCall{.name = std::string(name)});
          if (c["arguments"].get(arguments) == simdjson::SUCCESS) {
            if (!arguments.is_object()) return fail("a tool call's \"arguments\" must be a JSON object");
            call.arguments_json = simdjson::minify(arguments);
          }
        }
      } else if (simdjson::dom::object headers;
                 key == "headers" && value.get_object().get(headers) == simdjson::SUCCESS) {
        for (auto [hk, hv] : headers) {
          std::string_view hs;
          if (hv.get_string().get(hs) != simdjson::SUCCESS) return fail("header values must be strings");
          r.headers.emplace_back(std::string(hk), std::string(hs));
        }
      } else {
        return fail(fmt::format("unknown or mistyped script field \"{}\"", key));
      }
    }
    if (times < 1 || times > 1'000'000) return fail("times must be between 1 and 1000000");
    for (std::int64_t i = 0; i < times; ++i) out.emplace_back(model, r);
  }
  return out;
}

MockServer::MockServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<MockServer>> MockServer::start(MockOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  if (auto s = impl->open_socket(); !s.ok()) return std::move(s).error();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<MockServer>(new MockServer(std::move(impl)));
}

MockServer::~MockServer() {
  impl_->stopping = true;
  std::uint64_t one = 1;
  [[maybe_unused]] auto w = ::write(impl_->wake_fd, &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MockServer::port() const { return impl_->port; }
std::string MockServer::root_url() const { return fmt::format("http://{}:{}", impl_->options.host, impl_->port); }
std::string MockServer::base_url() const { return root_url() + "/v1"; }

void MockServer::enqueue(const std::string& model, MockReply reply) {
  std::lock_guard lock(impl_->mu);
  impl_->queues[model].push_back(std::move(reply));
}

MockStats MockServer::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

void MockServer::hold_until_concurrent(std::size_t count) {
  std::lock_guard lock(impl_->mu);
  impl_->hold_count = count;
}

std::vector<RecordedRequest> MockServer::recent_requests() const {
  std::lock_guard lock(impl_->mu);
  return {impl_->recent.begin(), impl_->recent.end()};
}

void MockServer::reset() {
  std::lock_guard lock(impl_->mu);
  impl_->queues.clear();
  const std::uint64_t open = impl_->stats.in_flight;
  impl_->stats = {};
  impl_->stats.in_flight = open;
  impl_->recent.clear();
}

}  // namespace llmguard::mock
