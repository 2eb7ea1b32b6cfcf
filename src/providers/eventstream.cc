#include "providers/eventstream.h"

#include <algorithm>
#include <array>

namespace llmguard::internal::aws {
namespace {

// The reflected polynomial of CRC-32/ISO-HDLC.
constexpr std::uint32_t kCrc32Polynomial = 0xEDB88320u;

constexpr std::array<std::uint32_t, 256> make_crc32_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) ? (crc >> 1) ^ kCrc32Polynomial : crc >> 1;
    table[i] = crc;
  }
  return table;
}

// A byte at a time is plenty: Bedrock's events are a few hundred bytes.
constexpr std::array<std::uint32_t, 256> kCrc32Table = make_crc32_table();

std::uint32_t load_be32(const char* at) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(at);
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::uint64_t load_be(const char* at, std::size_t size) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(at);
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size; ++i) value = (value << 8) | p[i];
  return value;
}

void append_be(std::string& out, std::uint64_t value, std::size_t size) {
  for (std::size_t i = size; i-- > 0;) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// The size of a fixed-size value of `type`; nullopt for length-prefixed ones and unknown types.
std::optional<std::size_t> fixed_value_size(HeaderType type) noexcept {
  switch (type) {
    case HeaderType::kBoolTrue:
    case HeaderType::kBoolFalse:
      return 0;
    case HeaderType::kByte:
      return 1;
    case HeaderType::kInt16:
      return 2;
    case HeaderType::kInt32:
      return 4;
    case HeaderType::kInt64:
    case HeaderType::kTimestamp:
      return 8;
    case HeaderType::kUuid:
      return 16;
    case HeaderType::kBytes:
    case HeaderType::kString:
      break;
  }
  return std::nullopt;
}

// Sign-extends the low `size` bytes of `raw`.
std::int64_t signed_value(std::uint64_t raw, std::size_t size) noexcept {
  switch (size) {
    case 1:
      return static_cast<std::int8_t>(raw);
    case 2:
      return static_cast<std::int16_t>(raw);
    case 4:
      return static_cast<std::int32_t>(raw);
    default:
      return static_cast<std::int64_t>(raw);
  }
}

constexpr std::uint8_t kLastHeaderType = static_cast<std::uint8_t>(HeaderType::kUuid);
constexpr std::size_t kMaxHeaderNameBytes = 255;
constexpr std::size_t kMaxHeaderValueBytes = 65535;

}  // namespace

std::uint32_t crc32(std::uint32_t crc, std::string_view bytes) noexcept {
  crc = ~crc;
  for (const char c : bytes) crc = kCrc32Table[(crc ^ static_cast<unsigned char>(c)) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

const HeaderValue* EventMessage::find(std::string_view name) const noexcept {
  for (const EventHeader& header : headers) {
    if (header.name == name) return &header.value;
  }
  return nullptr;
}

std::string_view EventMessage::string_header(std::string_view name) const noexcept {
  const HeaderValue* value = find(name);
  return value != nullptr && value->type == HeaderType::kString ? value->data : std::string_view();
}

std::string_view to_string(EventStreamError error) noexcept {
  switch (error) {
    case EventStreamError::kNone:
      return "none";
    case EventStreamError::kPreludeCrcMismatch:
      return "prelude_crc_mismatch";
    case EventStreamError::kMessageCrcMismatch:
      return "message_crc_mismatch";
    case EventStreamError::kLengthOutOfBounds:
      return "length_out_of_bounds";
    case EventStreamError::kBadHeaderType:
      return "bad_header_type";
    case EventStreamError::kTruncatedHeader:
      return "truncated_header";
  }
  return "unknown";
}

std::uint32_t EventStreamDecoder::check_prelude(const char* prelude) noexcept {
  const std::uint32_t total = load_be32(prelude);
  const std::uint32_t headers_length = load_be32(prelude + 4);
  // The CRC first: a corrupted length is reported as corruption, not as a length.
  if (crc32(0, std::string_view(prelude, 8)) != load_be32(prelude + 8)) {
    fail(EventStreamError::kPreludeCrcMismatch);
    return 0;
  }
  if (total < kMinMessageBytes || total > max_message_bytes_ || headers_length > total - kMinMessageBytes) {
    fail(EventStreamError::kLengthOutOfBounds);
    return 0;
  }
  return total;
}

std::size_t EventStreamDecoder::take_pending(std::string_view bytes) {
  std::size_t taken = 0;
  if (pending_total_ == 0) {
    taken = std::min(bytes.size(), kPreludeBytes - pending_.size());
    pending_.append(bytes.data(), taken);
    if (pending_.size() < kPreludeBytes) return taken;
    pending_total_ = check_prelude(pending_.data());
    if (pending_total_ == 0) return taken;
    pending_.reserve(pending_total_);
  }
  const std::size_t more = std::min(bytes.size() - taken, pending_total_ - pending_.size());
  pending_.append(bytes.data() + taken, more);
  return taken + more;
}

bool EventStreamDecoder::split(std::string_view whole, EventMessage& message) {
  const std::uint32_t headers_length = load_be32(whole.data() + 4);
  const std::size_t crc_at = whole.size() - 4;
  // The prelude's CRC is the running CRC of its first 8 bytes, so the message CRC carries on from it.
  const std::uint32_t prelude_crc = load_be32(whole.data() + 8);
  if (crc32(prelude_crc, whole.substr(8, crc_at - 8)) != load_be32(whole.data() + crc_at)) {
    return fail(EventStreamError::kMessageCrcMismatch);
  }

  headers_.clear();
  std::string_view rest = whole.substr(kPreludeBytes, headers_length);
  while (!rest.empty()) {
    const std::size_t name_length = static_cast<unsigned char>(rest[0]);
    if (rest.size() < 1 + name_length + 1) return fail(EventStreamError::kTruncatedHeader);
    EventHeader header;
    header.name = rest.substr(1, name_length);
    const auto type_code = static_cast<std::uint8_t>(rest[1 + name_length]);
    if (type_code > kLastHeaderType) return fail(EventStreamError::kBadHeaderType);
    header.value.type = static_cast<HeaderType>(type_code);
    rest.remove_prefix(1 + name_length + 1);

    if (const auto size = fixed_value_size(header.value.type)) {
      if (rest.size() < *size) return fail(EventStreamError::kTruncatedHeader);
      if (header.value.type == HeaderType::kUuid) {
        header.value.data = rest.substr(0, *size);
      } else if (*size > 0) {
        header.value.integer = signed_value(load_be(rest.data(), *size), *size);
      }
      rest.remove_prefix(*size);
    } else {
      if (rest.size() < 2) return fail(EventStreamError::kTruncatedHeader);
      const std::size_t value_length = load_be(rest.data(), 2);
      if (rest.size() < 2 + value_length) return fail(EventStreamError::kTruncatedHeader);
      header.value.data = rest.substr(2, value_length);
      rest.remove_prefix(2 + value_length);
    }
    headers_.push_back(header);
  }

  message.headers = headers_;
  message.payload = whole.substr(kPreludeBytes + headers_length, crc_at - kPreludeBytes - headers_length);
  return true;
}

std::optional<std::string> encode_message(std::span<const EventHeader> headers, std::string_view payload,
                                          std::uint32_t max_message_bytes) {
  std::string out(kPreludeBytes, '\0');  // the prelude is written once the lengths are known
  for (const EventHeader& header : headers) {
    if (header.name.empty() || header.name.size() > kMaxHeaderNameBytes) return std::nullopt;
    const auto type_code = static_cast<std::uint8_t>(header.value.type);
    if (type_code > kLastHeaderType) return std::nullopt;
    out.push_back(static_cast<char>(header.name.size()));
    out.append(header.name);
    out.push_back(static_cast<char>(type_code));
    if (const auto size = fixed_value_size(header.value.type)) {
      if (header.value.type == HeaderType::kUuid) {
        if (header.value.data.size() != *size) return std::nullopt;
        out.append(header.value.data);
      } else {
        if (*size > 0 &&
            signed_value(static_cast<std::uint64_t>(header.value.integer), *size) != header.value.integer) {
          return std::nullopt;  // out of its type's range
        }
        append_be(out, static_cast<std::uint64_t>(header.value.integer), *size);
      }
    } else {
      if (header.value.data.size() > kMaxHeaderValueBytes) return std::nullopt;
      append_be(out, header.value.data.size(), 2);
      out.append(header.value.data);
    }
    if (out.size() > max_message_bytes) return std::nullopt;
  }
  const std::size_t headers_length = out.size() - kPreludeBytes;
  const std::size_t total = out.size() + payload.size() + 4;
  if (total > max_message_bytes) return std::nullopt;
  out.append(payload);

  std::string prelude;
  append_be(prelude, total, 4);
  append_be(prelude, headers_length, 4);
  append_be(prelude, crc32(0, prelude), 4);
  out.replace(0, kPreludeBytes, prelude);
  append_be(out, crc32(0, out), 4);
  return out;
}

}  // namespace llmguard::internal::aws
