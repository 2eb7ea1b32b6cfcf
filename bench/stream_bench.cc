// The per-byte and per-event work of a reply, with Google Benchmark: SSE
// scanning, a whole stream through the accumulator, and a plain reply's
// parse. The shapes follow OpenAI's and Anthropic's published replies (a
// role chunk, content chunks of a few tokens, a finish chunk, a usage chunk
// with no choices, [DONE]); bench/nginx serves the same shapes over HTTP.
#include <benchmark/benchmark.h>

#include <string>

#include "codec.h"
#include "providers/wire_api.h"
#include "sse.h"
#include "stream.h"

namespace {

using llmguard::Provider;
namespace internal = llmguard::internal;

// Words of a plausible reply, with the escapes real content carries.
std::string piece_of_text(int i) {
  static constexpr const char* kWords[] = {"The ", "answer ", "is ", "\\\"42\\\"", ", ", "because ",
                                           "it ",  "fits\\n", "— ",  "mostly",     ". ", "Über "};
  return kWords[i % 12];
}

std::string openai_stream(int content_events) {
  const std::string head =
      R"(data: {"id":"chatcmpl-BXd7JmQ2r8T0y9a6n4Vv1kLzEwPq3","object":"chat.completion.chunk","created":1747000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0392822090","choices":[)";
  std::string s =
      head +
      R"({"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null})"
      "\n\n";
  for (int i = 0; i < content_events; ++i) {
    s += head + R"({"index":0,"delta":{"content":")" + piece_of_text(i) +
         R"("},"logprobs":null,"finish_reason":null}],"usage":null})"
         "\n\n";
  }
  s += head + R"({"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null})"
              "\n\n";
  s +=
      head +
      R"(],"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})"
      "\n\n";
  s += "data: [DONE]\n\n";
  return s;
}

std::string anthropic_stream(int content_events) {
  std::string s =
      "event: message_start\n"
      R"(data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2,"service_tier":"standard"}}})"
      "\n\n"
      "event: content_block_start\n"
      R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
      "\n\n"
      "event: ping\ndata: {\"type\": \"ping\"}\n\n";
  for (int i = 0; i < content_events; ++i) {
    s += "event: content_block_delta\n"
         R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")" +
         piece_of_text(i) + "\"}}\n\n";
  }
  s +=
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: message_delta\n"
      R"(data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":46}})"
      "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  return s;
}

std::string openai_completion(std::size_t content_bytes) {
  std::string content;
  for (int i = 0; content.size() < content_bytes; ++i) content += piece_of_text(i);
  return R"({"id":"chatcmpl-BXd7JmQ2r8T0y9a6n4Vv1kLzEwPq3","object":"chat.completion","created":1747000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":")" +
         content +
         R"(","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,"completion_tokens":16000,"total_tokens":17117,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_0392822090"})";
}

// Feeds `stream` as libcurl hands it over: in pieces of up to 16 KB.
template <typename OnEvent>
bool feed_in_pieces(internal::SseParser& parser, std::string_view stream, OnEvent&& on_event) {
  for (std::size_t at = 0; at < stream.size(); at += 16384) {
    if (!parser.feed(stream.substr(at, 16384), on_event)) return false;
  }
  return true;
}

void BM_SseScan(benchmark::State& state) {
  const std::string stream = openai_stream(static_cast<int>(state.range(0)));
  std::size_t events = 0;
  for (auto _ : state) {
    internal::SseParser parser;
    feed_in_pieces(parser, stream, [&](const internal::SseEvent& e) {
      benchmark::DoNotOptimize(e.data.data());
      return ++events, true;
    });
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  benchmark::DoNotOptimize(events);
}
BENCHMARK(BM_SseScan)->Arg(24)->Arg(500);

void run_stream(benchmark::State& state, Provider provider, const std::string& stream) {
  std::size_t deltas = 0;
  const internal::StreamDecoder::Emit emit = [&deltas](const llmguard::StreamDelta&) { ++deltas; };
  const internal::WireApi& api = internal::wire_api(provider);
  for (auto _ : state) {
    auto decoder = api.stream_decoder();
    for (std::size_t at = 0; at < stream.size(); at += 16384) {
      if (decoder->feed(std::string_view(stream).substr(at, 16384), emit, 200, {})) break;
    }
    auto reply = decoder->finish(200);
    if (!reply.ok()) state.SkipWithError("the stream did not parse");
    benchmark::DoNotOptimize(reply);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.counters["deltas_per_stream"] = static_cast<double>(deltas) / static_cast<double>(state.iterations());
}

void BM_OpenAIStream(benchmark::State& state) {
  run_stream(state, Provider::kOpenAI, openai_stream(static_cast<int>(state.range(0))));
}
BENCHMARK(BM_OpenAIStream)->Arg(24)->Arg(500);

void BM_AnthropicStream(benchmark::State& state) {
  run_stream(state, Provider::kAnthropic, anthropic_stream(static_cast<int>(state.range(0))));
}
BENCHMARK(BM_AnthropicStream)->Arg(24);

void BM_ReplyParse(benchmark::State& state) {
  const std::string body = openai_completion(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto reply = internal::parse_response_body(Provider::kOpenAI, 200, {}, body);
    if (!reply.ok()) state.SkipWithError("the reply did not parse");
    benchmark::DoNotOptimize(reply);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ReplyParse)->Arg(400)->Arg(4096)->Arg(65536);

}  // namespace

BENCHMARK_MAIN();
