// AWS event-stream framing (`application/vnd.amazon.eventstream`), the binary
// transport of Bedrock's ConverseStream. A message is
//
//   total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32
//
// big-endian, where prelude_crc is the CRC-32 of the first 8 bytes and
// message_crc the CRC-32 of everything before it. Each header is
// name_length u8 | name | type u8 | value; the value's size follows from its
// type, or from a u16 length before it (bytes, string).
//
//   aws::EventStreamDecoder decoder;
//   for (std::string_view piece : body) {  // split anywhere
//     if (!decoder.feed(piece, [&](const aws::EventMessage& message) {
//           if (message.string_header(aws::kMessageTypeHeader) == "exception") ...
//           return true;
//         }))
//       break;  // decoder.error() says why, unless the callback stopped it
//   }
//   if (decoder.has_partial_message()) ...  // the stream was cut inside a message
#ifndef LLMGUARD_SRC_PROVIDERS_EVENTSTREAM_H_
#define LLMGUARD_SRC_PROVIDERS_EVENTSTREAM_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmguard::internal::aws {

// CRC-32/ISO-HDLC (zlib's crc32), continuing from `crc`: crc32(crc32(0, a), b) == crc32(0, a + b).
std::uint32_t crc32(std::uint32_t crc, std::string_view bytes) noexcept;

// The wire codes of header value types.
enum class HeaderType : std::uint8_t {
  kBoolTrue = 0,
  kBoolFalse = 1,
  kByte = 2,
  kInt16 = 3,
  kInt32 = 4,
  kInt64 = 5,
  kBytes = 6,
  kString = 7,
  kTimestamp = 8,
  kUuid = 9,
};

struct HeaderValue {
  HeaderType type = HeaderType::kString;
  // kByte, kInt16, kInt32, kInt64 (signed); kTimestamp: milliseconds since the Unix epoch.
  std::int64_t integer = 0;
  // kBytes, kString (UTF-8, unchecked); kUuid: its 16 bytes.
  std::string_view data;

  bool boolean_value() const noexcept { return type == HeaderType::kBoolTrue; }

  static HeaderValue boolean(bool value) noexcept {
    return {value ? HeaderType::kBoolTrue : HeaderType::kBoolFalse, 0, {}};
  }
  static HeaderValue byte(std::int8_t value) noexcept { return {HeaderType::kByte, value, {}}; }
  static HeaderValue int16(std::int16_t value) noexcept { return {HeaderType::kInt16, value, {}}; }
  static HeaderValue int32(std::int32_t value) noexcept { return {HeaderType::kInt32, value, {}}; }
  static HeaderValue int64(std::int64_t value) noexcept { return {HeaderType::kInt64, value, {}}; }
  static HeaderValue timestamp(std::int64_t millis) noexcept { return {HeaderType::kTimestamp, millis, {}}; }
  static HeaderValue bytes(std::string_view value) noexcept { return {HeaderType::kBytes, 0, value}; }
  static HeaderValue string(std::string_view value) noexcept { return {HeaderType::kString, 0, value}; }
  static HeaderValue uuid(std::string_view sixteen_bytes) noexcept { return {HeaderType::kUuid, 0, sixteen_bytes}; }

  bool operator==(const HeaderValue&) const = default;
};

struct EventHeader {
  std::string_view name;
  HeaderValue value;
  bool operator==(const EventHeader&) const = default;
};

// The headers Bedrock's messages carry.
inline constexpr std::string_view kMessageTypeHeader = ":message-type";      // "event", "exception", "error"
inline constexpr std::string_view kEventTypeHeader = ":event-type";          // "contentBlockDelta", ...
inline constexpr std::string_view kExceptionTypeHeader = ":exception-type";  // "throttlingException", ...
inline constexpr std::string_view kContentTypeHeader = ":content-type";      // "application/json"

// One decoded message. A view: valid during the decoder's callback only.
struct EventMessage {
  std::span<const EventHeader> headers;  // in wire order
  std::string_view payload;

  // The first header called `name`, or nullptr.
  const HeaderValue* find(std::string_view name) const noexcept;
  // The value of the string header `name`; "" when absent or of another type.
  std::string_view string_header(std::string_view name) const noexcept;
};

// Prelude and message CRC: the smallest message is 16 bytes.
inline constexpr std::size_t kPreludeBytes = 12;
inline constexpr std::size_t kMinMessageBytes = 16;
// No Bedrock event comes near this; a longer claimed length means a broken or hostile stream.
inline constexpr std::uint32_t kMaxMessageBytes = 16u << 20;

enum class EventStreamError : std::uint8_t {
  kNone,
  kPreludeCrcMismatch,
  kMessageCrcMismatch,
  // total_length below 16 or above the decoder's limit, or headers_length past the payload.
  kLengthOutOfBounds,
  kBadHeaderType,
  // A header runs past headers_length.
  kTruncatedHeader,
};

// "prelude_crc_mismatch", ...
std::string_view to_string(EventStreamError error) noexcept;

// Incremental decoder. A message that lies whole within one feed is handed
// out as a view of the fed bytes; only the tail of a message split across
// feeds is copied. Thread-compatible.
class EventStreamDecoder {
 public:
  explicit EventStreamDecoder(std::uint32_t max_message_bytes = kMaxMessageBytes)
      : max_message_bytes_(max_message_bytes) {}

  // Feeds bytes (any split, down to one byte at a time); calls
  // `on_message(const EventMessage&) -> bool` for each complete message.
  // Returns false when the stream is broken (see error()) or `on_message`
  // returned false; either way the decoder is finished and later feeds
  // return false at once. Messages before a broken one were delivered.
  template <typename OnMessage>
  bool feed(std::string_view bytes, OnMessage&& on_message);

  EventStreamError error() const noexcept { return error_; }
  // Bytes of an unfinished message are held: a stream that ends now was cut.
  bool has_partial_message() const noexcept { return !pending_.empty(); }

 private:
  // The total length of the message whose prelude starts at `prelude`, or 0 (and error_ set).
  std::uint32_t check_prelude(const char* prelude) noexcept;
  // Moves what `bytes` holds of the message being assembled into pending_; returns how much.
  std::size_t take_pending(std::string_view bytes);
  // Checks a whole message's CRC and splits it into `message`; false (and error_ set) if broken.
  bool split(std::string_view whole, EventMessage& message);
  bool fail(EventStreamError error) noexcept {
    error_ = error;
    return false;
  }
  template <typename OnMessage>
  bool deliver(std::string_view whole, OnMessage& on_message);

  std::uint32_t max_message_bytes_;
  std::string pending_;               // a message split across feeds, as far as it came
  std::uint32_t pending_total_ = 0;   // its total length, once its prelude is in and checked
  std::vector<EventHeader> headers_;  // the current message's, reused
  EventStreamError error_ = EventStreamError::kNone;
  bool stopped_ = false;
};

template <typename OnMessage>
bool EventStreamDecoder::deliver(std::string_view whole, OnMessage& on_message) {
  EventMessage message;
  if (!split(whole, message)) return false;
  if (!on_message(static_cast<const EventMessage&>(message))) {
    stopped_ = true;
    return false;
  }
  return true;
}

template <typename OnMessage>
bool EventStreamDecoder::feed(std::string_view bytes, OnMessage&& on_message) {
  if (error_ != EventStreamError::kNone || stopped_) return false;
  if (!pending_.empty()) {
    bytes.remove_prefix(take_pending(bytes));
    if (error_ != EventStreamError::kNone) return false;
    if (pending_total_ == 0 || pending_.size() < pending_total_) return true;  // every byte went in
    const bool delivered = deliver(pending_, on_message);
    pending_.clear();
    pending_total_ = 0;
    if (!delivered) return false;
  }
  while (bytes.size() >= kPreludeBytes) {
    const std::uint32_t total = check_prelude(bytes.data());
    if (total == 0) return false;
    if (bytes.size() < total) break;
    if (!deliver(bytes.substr(0, total), on_message)) return false;
    bytes.remove_prefix(total);
  }
  if (!bytes.empty()) take_pending(bytes);
  return error_ == EventStreamError::kNone;
}

// One framed message. nullopt when it cannot be framed: a header name empty
// or longer than 255 bytes, an unknown type, an integer out of its type's
// range, a bytes or string value longer than 65535, a uuid not 16 bytes, or
// the whole longer than `max_message_bytes`.
std::optional<std::string> encode_message(std::span<const EventHeader> headers, std::string_view payload,
                                          std::uint32_t max_message_bytes = kMaxMessageBytes);

}  // namespace llmguard::internal::aws

#endif  // LLMGUARD_SRC_PROVIDERS_EVENTSTREAM_H_
