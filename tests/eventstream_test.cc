// AWS event-stream framing against the vectors aws-c-event-stream publishes
// (tests/data/eventstream, see its README.md), whatever the chunking.
#include "providers/eventstream.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace llmguard::internal::aws {
namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::string vector_path(std::string_view kind, std::string_view name) {
  return std::string(LLMGUARD_TEST_DATA_DIR) + "/eventstream/" + std::string(kind) + "/" + std::string(name);
}

std::string base64_decoded(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned int bits = 0;
  int count = 0;
  for (const char c : text) {
    if (c == '=') break;
    const int v = value_of(c);
    REQUIRE(v >= 0);
    bits = (bits << 6) | static_cast<unsigned int>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return out;
}

// A message copied out of the decoder's callback.
struct Decoded {
  struct Header {
    std::string name;
    HeaderType type;
    std::int64_t integer;
    std::string data;
    bool operator==(const Header&) const = default;
  };
  std::vector<Header> headers;
  std::string payload;
  bool operator==(const Decoded&) const = default;
};

Decoded copy_of(const EventMessage& message) {
  Decoded d;
  for (const EventHeader& h : message.headers) {
    d.headers.push_back({std::string(h.name), h.value.type, h.value.integer, std::string(h.value.data)});
  }
  d.payload = std::string(message.payload);
  return d;
}

struct Outcome {
  std::vector<Decoded> messages;
  EventStreamError error = EventStreamError::kNone;
  bool partial = false;
};

// Feeds `stream` cut at `cuts` (ascending offsets).
Outcome decode_cut(std::string_view stream, const std::vector<std::size_t>& cuts) {
  EventStreamDecoder decoder;
  Outcome outcome;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(stream.size());
  for (const std::size_t to : ends) {
    const bool ok = decoder.feed(stream.substr(from, to - from), [&](const EventMessage& message) {
      outcome.messages.push_back(copy_of(message));
      return true;
    });
    from = to;
    if (!ok) break;
  }
  outcome.error = decoder.error();
  outcome.partial = decoder.has_partial_message();
  return outcome;
}

Outcome decode_whole(std::string_view stream) { return decode_cut(stream, {}); }

Outcome decode_in_pieces(std::string_view stream, std::size_t piece) {
  std::vector<std::size_t> cuts;
  for (std::size_t at = piece; at < stream.size(); at += piece) cuts.push_back(at);
  return decode_cut(stream, cuts);
}

// What decoded/positive/NAME says the message holds.
Decoded expected_of(std::string_view name, const std::string& encoded) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(read_bytes(vector_path("decoded/positive", name))).get(doc) == simdjson::SUCCESS);
  std::int64_t total = 0, headers_length = 0, prelude_crc = 0, message_crc = 0;
  REQUIRE(doc["total_length"].get_int64().get(total) == simdjson::SUCCESS);
  REQUIRE(doc["headers_length"].get_int64().get(headers_length) == simdjson::SUCCESS);
  REQUIRE(doc["prelude_crc"].get_int64().get(prelude_crc) == simdjson::SUCCESS);
  REQUIRE(doc["message_crc"].get_int64().get(message_crc) == simdjson::SUCCESS);
  // The framing fields the JSON records, against the bytes (CRCs as signed 32-bit numbers).
  CHECK(static_cast<std::size_t>(total) == encoded.size());
  CHECK(crc32(0, std::string_view(encoded).substr(0, 8)) == static_cast<std::uint32_t>(prelude_crc));
  CHECK(crc32(0, std::string_view(encoded).substr(0, encoded.size() - 4)) == static_cast<std::uint32_t>(message_crc));

  Decoded d;
  simdjson::dom::array headers;
  REQUIRE(doc["headers"].get_array().get(headers) == simdjson::SUCCESS);
  for (simdjson::dom::element h : headers) {
    std::string_view header_name;
    std::int64_t type = 0;
    REQUIRE(h["name"].get_string().get(header_name) == simdjson::SUCCESS);
    REQUIRE(h["type"].get_int64().get(type) == simdjson::SUCCESS);
    Decoded::Header header{std::string(header_name), static_cast<HeaderType>(type), 0, ""};
    switch (header.type) {
      case HeaderType::kBoolTrue:
      case HeaderType::kBoolFalse: {
        bool value = false;
        REQUIRE(h["value"].get_bool().get(value) == simdjson::SUCCESS);
        CHECK(value == (header.type == HeaderType::kBoolTrue));
        break;
      }
      case HeaderType::kBytes:
      case HeaderType::kString:
      case HeaderType::kUuid: {
        std::string_view value;
        REQUIRE(h["value"].get_string().get(value) == simdjson::SUCCESS);
        header.data = base64_decoded(value);
        break;
      }
      default:
        REQUIRE(h["value"].get_int64().get(header.integer) == simdjson::SUCCESS);
    }
    d.headers.push_back(std::move(header));
  }
  std::string_view payload;
  REQUIRE(doc["payload"].get_string().get(payload) == simdjson::SUCCESS);
  d.payload = base64_decoded(payload);
  CHECK(headers_length + static_cast<std::int64_t>(d.payload.size()) + 16 == total);
  return d;
}

const std::vector<std::string> kPositiveVectors = {"all_headers", "empty_message", "int32_header", "payload_no_headers",
                                                   "payload_one_str_header"};
const std::vector<std::string> kNegativeVectors = {"corrupted_header_len", "corrupted_headers", "corrupted_length",
                                                   "corrupted_payload"};

TEST_CASE("CRC-32 is zlib's: the check value, chaining, the empty string") {
  CHECK(crc32(0, "123456789") == 0xCBF43926u);
  CHECK(crc32(0, "") == 0u);
  CHECK(crc32(crc32(0, "12345"), "6789") == 0xCBF43926u);
  CHECK(crc32(0, "The quick brown fox jumps over the lazy dog") == 0x414FA339u);
}

TEST_CASE("Every positive vector decodes to its headers and payload, and encodes back to its bytes") {
  for (const std::string& name : kPositiveVectors) {
    CAPTURE(name);
    const std::string encoded = read_bytes(vector_path("encoded/positive", name));
    const Decoded expected = expected_of(name, encoded);
    const Outcome outcome = decode_whole(encoded);
    CHECK(outcome.error == EventStreamError::kNone);
    CHECK_FALSE(outcome.partial);
    REQUIRE(outcome.messages.size() == 1);
    CHECK(outcome.messages[0] == expected);

    std::vector<EventHeader> headers;
    for (const auto& h : expected.headers) headers.push_back({h.name, {h.type, h.integer, h.data}});
    const auto reencoded = encode_message(headers, expected.payload);
    REQUIRE(reencoded.has_value());
    CHECK(*reencoded == encoded);
  }
}

TEST_CASE("all_headers holds one header of every type with its value") {
  const std::string encoded = read_bytes(vector_path("encoded/positive", "all_headers"));
  EventStreamDecoder decoder;
  int seen = 0;
  REQUIRE(decoder.feed(encoded, [&](const EventMessage& m) {
    ++seen;
    CHECK(m.string_header("content-type") == "application/json");
    REQUIRE(m.find("event-type") != nullptr);
    CHECK(*m.find("event-type") == HeaderValue::int32(40972));
    CHECK(*m.find("bool false") == HeaderValue::boolean(false));
    CHECK(*m.find("bool true") == HeaderValue::boolean(true));
    CHECK(m.find("bool true")->boolean_value());
    CHECK(*m.find("byte") == HeaderValue::byte(-49));
    CHECK(*m.find("byte buf") == HeaderValue::bytes("I'm a little teapot!"));
    CHECK(*m.find("timestamp") == HeaderValue::timestamp(8675309));
    CHECK(*m.find("int16") == HeaderValue::int16(42));
    CHECK(*m.find("int64") == HeaderValue::int64(42424242));
    CHECK(*m.find("uuid") == HeaderValue::uuid("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"));
    CHECK(m.find("missing") == nullptr);
    CHECK(m.string_header("byte buf") == "");  // bytes, not a string
    CHECK(m.payload == "{'foo':'bar'}");
    return true;
  }));
  CHECK(seen == 1);
}

TEST_CASE("Every negative vector fails with its error, before any message") {
  for (const std::string& name : kNegativeVectors) {
    CAPTURE(name);
    const std::string encoded = read_bytes(vector_path("encoded/negative", name));
    const std::string said = read_bytes(vector_path("decoded/negative", name));
    const EventStreamError expected = said == "Prelude checksum mismatch"   ? EventStreamError::kPreludeCrcMismatch
                                      : said == "Message checksum mismatch" ? EventStreamError::kMessageCrcMismatch
                                                                            : EventStreamError::kNone;
    REQUIRE(expected != EventStreamError::kNone);
    for (std::size_t piece : {encoded.size(), std::size_t{1}, std::size_t{5}}) {
      CAPTURE(piece);
      const Outcome outcome = decode_in_pieces(encoded, piece);
      CHECK(outcome.messages.empty());
      CHECK(outcome.error == expected);
    }
  }
}

TEST_CASE("Every positive vector decodes the same cut in two anywhere, and fed a byte at a time") {
  for (const std::string& name : kPositiveVectors) {
    CAPTURE(name);
    const std::string encoded = read_bytes(vector_path("encoded/positive", name));
    const Outcome whole = decode_whole(encoded);
    REQUIRE(whole.messages.size() == 1);
    for (std::size_t cut = 0; cut <= encoded.size(); ++cut) {
      CAPTURE(cut);
      const Outcome two = decode_cut(encoded, {cut});
      CHECK(two.messages == whole.messages);
      CHECK(two.error == EventStreamError::kNone);
      CHECK_FALSE(two.partial);
    }
    const Outcome bytewise = decode_in_pieces(encoded, 1);
    CHECK(bytewise.messages == whole.messages);
    CHECK_FALSE(bytewise.partial);
  }
}

TEST_CASE("A stream of all positive vectors decodes the same in pieces of every size") {
  std::string stream;
  for (const std::string& name : kPositiveVectors) stream += read_bytes(vector_path("encoded/positive", name));
  const Outcome whole = decode_whole(stream);
  REQUIRE(whole.messages.size() == kPositiveVectors.size());
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    CAPTURE(piece);
    const Outcome pieces = decode_in_pieces(stream, piece);
    CHECK(pieces.messages == whole.messages);
    CHECK(pieces.error == EventStreamError::kNone);
    CHECK_FALSE(pieces.partial);
  }
}

std::string encoded_or_fail(std::span<const EventHeader> headers, std::string_view payload) {
  auto encoded = encode_message(headers, payload);
  REQUIRE(encoded.has_value());
  return *encoded;
}

TEST_CASE("Every header type round-trips through the encoder, at the ends of each type's range") {
  const std::string uuid = "0123456789abcdef";
  const std::string long_value(65535, 'v');
  const std::string long_name(255, 'n');
  const std::vector<EventHeader> headers = {
      {"t", HeaderValue::boolean(true)},
      {"f", HeaderValue::boolean(false)},
      {"b-min", HeaderValue::byte(-128)},
      {"b-max", HeaderValue::byte(127)},
      {"s-min", HeaderValue::int16(-32768)},
      {"s-max", HeaderValue::int16(32767)},
      {"i-min", HeaderValue::int32(INT32_MIN)},
      {"i-max", HeaderValue::int32(INT32_MAX)},
      {"l-min", HeaderValue::int64(INT64_MIN)},
      {"l-max", HeaderValue::int64(INT64_MAX)},
      {"bytes", HeaderValue::bytes(std::string_view("\0\xff\x01", 3))},
      {"empty", HeaderValue::string("")},
      {long_name, HeaderValue::string(long_value)},
      {"ts", HeaderValue::timestamp(-1)},
      {"uuid", HeaderValue::uuid(uuid)},
  };
  const std::string payload = std::string("binary\0payload", 14);
  const std::string encoded = encoded_or_fail(headers, payload);
  EventStreamDecoder decoder;
  int seen = 0;
  REQUIRE(decoder.feed(encoded, [&](const EventMessage& m) {
    ++seen;
    CHECK(std::vector<EventHeader>(m.headers.begin(), m.headers.end()) == headers);
    CHECK(m.payload == payload);
    return true;
  }));
  CHECK(seen == 1);
}

TEST_CASE("The encoder refuses what cannot be framed") {
  const std::string too_long_name(256, 'n');
  const std::string too_long_value(65536, 'v');
  auto refuses = [](std::vector<EventHeader> headers, std::string_view payload = "",
                    std::uint32_t max = kMaxMessageBytes) {
    return !encode_message(headers, payload, max).has_value();
  };
  CHECK(refuses({{"", HeaderValue::string("x")}}));
  CHECK(refuses({{too_long_name, HeaderValue::string("x")}}));
  CHECK(refuses({{"s", HeaderValue::string(too_long_value)}}));
  CHECK(refuses({{"b", HeaderValue::bytes(too_long_value)}}));
  CHECK(refuses({{"u", HeaderValue::uuid("short")}}));
  CHECK(refuses({{"x", HeaderValue{static_cast<HeaderType>(10), 0, {}}}}));
  CHECK(refuses({{"i", HeaderValue{HeaderType::kInt32, std::int64_t{1} << 31, {}}}}));
  CHECK(refuses({{"b", HeaderValue{HeaderType::kByte, 128, {}}}}));
  CHECK(refuses({}, std::string(100, 'p'), 100));
  CHECK_FALSE(refuses({}, std::string(84, 'p'), 100));  // 84 + 16 = 100 exactly
}

TEST_CASE("A Bedrock contentBlockDelta event and a throttling exception decode to what Bedrock sends") {
  const std::vector<EventHeader> delta_headers = {
      {":event-type", HeaderValue::string("contentBlockDelta")},
      {":content-type", HeaderValue::string("application/json")},
      {":message-type", HeaderValue::string("event")},
  };
  const std::string delta_payload = R"({"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abcd"})";
  const std::vector<EventHeader> exception_headers = {
      {":exception-type", HeaderValue::string("throttlingException")},
      {":content-type", HeaderValue::string("application/json")},
      {":message-type", HeaderValue::string("exception")},
  };
  const std::string exception_payload = R"({"message":"Too many requests, please wait before trying again."})";
  const std::string stream =
      encoded_or_fail(delta_headers, delta_payload) + encoded_or_fail(exception_headers, exception_payload);

  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    CAPTURE(piece);
    EventStreamDecoder decoder;
    std::vector<std::string> seen;
    for (std::size_t at = 0; at < stream.size(); at += piece) {
      REQUIRE(decoder.feed(std::string_view(stream).substr(at, piece), [&](const EventMessage& m) {
        if (m.string_header(kMessageTypeHeader) == "event") {
          CHECK(m.string_header(kEventTypeHeader) == "contentBlockDelta");
          CHECK(m.string_header(kContentTypeHeader) == "application/json");
          CHECK(m.payload == delta_payload);
          seen.push_back("delta");
        } else {
          CHECK(m.string_header(kMessageTypeHeader) == "exception");
          CHECK(m.string_header(kExceptionTypeHeader) == "throttlingException");
          CHECK(m.string_header(kEventTypeHeader) == "");
          CHECK(m.payload == exception_payload);
          seen.push_back("exception");
        }
        return true;
      }));
    }
    CHECK(seen == std::vector<std::string>{"delta", "exception"});
    CHECK_FALSE(decoder.has_partial_message());
  }
}

TEST_CASE("A message within one feed is a view of the fed bytes; a split one is reassembled") {
  const std::vector<EventHeader> headers = {{":message-type", HeaderValue::string("event")}};
  const std::string one = encoded_or_fail(headers, "payload-one");
  const std::string stream = one + one;
  EventStreamDecoder decoder;
  std::vector<bool> borrowed;
  auto on_message = [&](const EventMessage& m) {
    const bool inside = m.payload.data() >= stream.data() && m.payload.data() < stream.data() + stream.size();
    borrowed.push_back(inside);
    CHECK(m.payload == "payload-one");
    return true;
  };
  // The first message whole; the second cut after 3 bytes of it.
  REQUIRE(decoder.feed(std::string_view(stream).substr(0, one.size() + 3), on_message));
  CHECK(decoder.has_partial_message());
  REQUIRE(decoder.feed(std::string_view(stream).substr(one.size() + 3), on_message));
  CHECK(borrowed == std::vector<bool>{true, false});
  CHECK_FALSE(decoder.has_partial_message());
}

// A message with these raw header bytes and correct CRCs.
std::string frame_with_raw_headers(std::string_view raw_headers, std::string_view payload) {
  std::string out;
  auto put32 = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
  };
  put32(static_cast<std::uint32_t>(16 + raw_headers.size() + payload.size()));
  put32(static_cast<std::uint32_t>(raw_headers.size()));
  put32(crc32(0, out));
  out.append(raw_headers).append(payload);
  put32(crc32(0, out));
  return out;
}

// A prelude with these lengths and a correct CRC, then `rest`.
std::string prelude_then(std::uint32_t total, std::uint32_t headers_length, std::string_view rest = "") {
  std::string out;
  auto put32 = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
  };
  put32(total);
  put32(headers_length);
  put32(crc32(0, out));
  return out.append(rest);
}

TEST_CASE("Broken messages fail with a typed error, however they are cut") {
  struct Case {
    const char* what;
    std::string bytes;
    EventStreamError error;
  };
  const std::vector<Case> cases = {
      {"total below 16", prelude_then(15, 0, std::string(8, '\0')), EventStreamError::kLengthOutOfBounds},
      {"total above the limit", prelude_then(kMaxMessageBytes + 1, 0), EventStreamError::kLengthOutOfBounds},
      {"headers past the payload", prelude_then(20, 5, std::string(8, '\0')), EventStreamError::kLengthOutOfBounds},
      {"unknown header type", frame_with_raw_headers(std::string("\x01n\x0a", 3), "p"),
       EventStreamError::kBadHeaderType},
      {"name past the headers", frame_with_raw_headers(std::string("\x05na", 3), "p"),
       EventStreamError::kTruncatedHeader},
      {"no type byte", frame_with_raw_headers(std::string("\x01n", 2), "p"), EventStreamError::kTruncatedHeader},
      {"int32 cut short", frame_with_raw_headers(std::string("\x01n\x04\x00\x00", 5), "p"),
       EventStreamError::kTruncatedHeader},
      {"string length cut short", frame_with_raw_headers(std::string("\x01n\x07\x00", 4), "p"),
       EventStreamError::kTruncatedHeader},
      {"string past the headers",
       frame_with_raw_headers(std::string("\x01n\x07\x00\x09"
                                          "abc",
                                          7),
                              "p"),
       EventStreamError::kTruncatedHeader},
      {"uuid cut short", frame_with_raw_headers(std::string("\x01n\x09\x01\x02", 5), "p"),
       EventStreamError::kTruncatedHeader},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    for (std::size_t piece : {c.bytes.size(), std::size_t{1}, std::size_t{7}}) {
      CAPTURE(piece);
      const Outcome outcome = decode_in_pieces(c.bytes, piece);
      CHECK(outcome.messages.empty());
      CHECK(outcome.error == c.error);
    }
  }
  CHECK(to_string(EventStreamError::kTruncatedHeader) == "truncated_header");
}

TEST_CASE("A decoder's own limit bounds the messages it takes") {
  const std::string message = encoded_or_fail({}, std::string(100, 'p'));
  EventStreamDecoder small(100);
  CHECK_FALSE(small.feed(message, [](const EventMessage&) { return true; }));
  CHECK(small.error() == EventStreamError::kLengthOutOfBounds);
  EventStreamDecoder enough(116);
  CHECK(enough.feed(message, [](const EventMessage&) { return true; }));
}

TEST_CASE("Once broken or stopped, a decoder stays so, after delivering the messages before") {
  const std::string good = read_bytes(vector_path("encoded/positive", "int32_header"));
  const std::string bad = read_bytes(vector_path("encoded/negative", "corrupted_payload"));

  const Outcome outcome = decode_whole(good + bad + good);
  CHECK(outcome.messages.size() == 1);
  CHECK(outcome.error == EventStreamError::kMessageCrcMismatch);

  EventStreamDecoder decoder;
  int seen = 0;
  auto count = [&](const EventMessage&) {
    ++seen;
    return true;
  };
  CHECK_FALSE(decoder.feed(bad, count));
  CHECK_FALSE(decoder.feed(good, count));
  CHECK(decoder.error() == EventStreamError::kMessageCrcMismatch);
  CHECK(seen == 0);

  EventStreamDecoder stopped;
  CHECK_FALSE(stopped.feed(good + good, [&](const EventMessage&) {
    ++seen;
    return false;
  }));
  CHECK(seen == 1);
  CHECK_FALSE(stopped.feed(good, count));
  CHECK(seen == 1);
  CHECK(stopped.error() == EventStreamError::kNone);
}

TEST_CASE("A stream cut inside a message leaves it partial") {
  const std::string good = read_bytes(vector_path("encoded/positive", "all_headers"));
  for (std::size_t cut = 1; cut < good.size(); ++cut) {
    CAPTURE(cut);
    EventStreamDecoder decoder;
    CHECK(decoder.feed(std::string_view(good).substr(0, cut), [](const EventMessage&) { return true; }));
    CHECK(decoder.has_partial_message());
  }
}

}  // namespace
}  // namespace llmguard::internal::aws
