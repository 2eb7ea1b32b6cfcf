// libFuzzer target: arbitrary bytes through the event-stream decoder, whole
// and in pieces. Beyond crashes and sanitizer reports, a bug is: the two
// feedings disagreeing, or a decoded message that does not survive being
// encoded and decoded again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "providers/eventstream.h"

namespace {

namespace aws = llmguard::internal::aws;

struct Run {
  std::vector<std::string> messages;  // each re-encoded, or "" when it cannot be
  aws::EventStreamError error = aws::EventStreamError::kNone;
  bool partial = false;
};

Run decode(std::string_view bytes, std::size_t piece) {
  aws::EventStreamDecoder decoder(1u << 16);  // small enough to reach the bound
  Run run;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    const bool ok = decoder.feed(bytes.substr(at, piece), [&](const aws::EventMessage& message) {
      const auto encoded = aws::encode_message(message.headers, message.payload, 1u << 16);
      run.messages.push_back(encoded.value_or(""));
      if (encoded) {
        // Encoding is the inverse of decoding.
        aws::EventStreamDecoder again(1u << 16);
        int seen = 0;
        const bool fine = again.feed(*encoded, [&](const aws::EventMessage& decoded) {
          ++seen;
          if (decoded.payload != message.payload || decoded.headers.size() != message.headers.size()) __builtin_trap();
          for (std::size_t i = 0; i < decoded.headers.size(); ++i) {
            if (!(decoded.headers[i] == message.headers[i])) __builtin_trap();
          }
          return true;
        });
        if (!fine || seen != 1 || again.has_partial_message()) __builtin_trap();
      }
      return true;
    });
    if (!ok) break;
  }
  run.error = decoder.error();
  run.partial = decoder.has_partial_message();
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // The first byte picks the piece size; the rest is the stream.
  const std::size_t piece = 1 + data[0] % 32;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Run whole = decode(bytes, bytes.size() + 1);
  const Run pieces = decode(bytes, piece);
  if (whole.messages != pieces.messages || whole.error != pieces.error) __builtin_trap();
  // A stream that stopped early keeps the rest unread, so only a clean one must agree on the tail.
  if (whole.error == aws::EventStreamError::kNone && whole.partial != pieces.partial) __builtin_trap();
  return 0;
}
