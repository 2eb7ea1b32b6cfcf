#include "sse.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace llmguard::internal {
namespace {

struct Seen {
  std::string event, data;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> parse_in_pieces(std::string_view stream, std::size_t piece) {
  SseParser parser;
  std::vector<Seen> seen;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    bool ok = parser.feed(stream.substr(at, piece), [&](const SseEvent& e) {
      seen.push_back({std::string(e.event), std::string(e.data)});
      return true;
    });
    REQUIRE(ok);
  }
  return seen;
}

TEST_CASE("Events parse the same whatever the chunking and line endings") {
  const std::vector<Seen> expected = {{"", "{\"a\":1}"}, {"content_block_delta", "line one\nline two"}, {"", "[DONE]"}};
  for (std::string_view eol : {"\n", "\r\n", "\r"}) {
    std::string stream;
    auto line = [&](std::string_view text) { stream.append(text).append(eol); };
    line(": keep-alive comment");
    line("data: {\"a\":1}");
    line("");
    line("event: content_block_delta");
    line("data: line one");
    line("data:line two");
    line("id: 7");
    line("");
    line("data: [DONE]");
    line("");
    for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
      CAPTURE(piece);
      CHECK(parse_in_pieces(stream, piece) == expected);
    }
  }
}

TEST_CASE("Line endings may change within one stream, and a CR may end one piece and its LF start the next") {
  const std::string stream =
      "data: a\r\n\r\n"
      "data: b\n\n"
      "data: c\r\r"
      "event: e\ndata: d1\rdata: d2\r\n\n"
      ": comment\r\ndata: [DONE]\n\r";
  const std::vector<Seen> expected = {{"", "a"}, {"", "b"}, {"", "c"}, {"e", "d1\nd2"}, {"", "[DONE]"}};
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    CAPTURE(piece);
    CHECK(parse_in_pieces(stream, piece) == expected);
  }
}

TEST_CASE("An event's data outlives the bytes it was fed in, when its blank line comes in a later feed") {
  SseParser parser;
  std::vector<Seen> seen;
  auto record = [&](const SseEvent& e) {
    seen.push_back({std::string(e.event), std::string(e.data)});
    return true;
  };
  {
    std::string first = "data: {\"n\":1}\n";
    REQUIRE(parser.feed(first, record));
    first.assign(first.size(), 'X');  // the caller reuses its buffer
  }
  CHECK(parser.has_partial_event());
  REQUIRE(parser.feed("\n", record));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].data == "{\"n\":1}");
  CHECK_FALSE(parser.has_partial_event());
}

TEST_CASE("Many events in one feed are each dispatched whole") {
  std::string stream;
  for (int i = 0; i < 200; ++i) stream += "data: {\"i\":" + std::to_string(i) + "}\n\n";
  const auto seen = parse_in_pieces(stream, stream.size());
  REQUIRE(seen.size() == 200);
  CHECK(seen[0].data == "{\"i\":0}");
  CHECK(seen[199].data == "{\"i\":199}");
}

TEST_CASE("A data line without a colon is an empty data field, whose view still points into the stream") {
  SseParser parser;
  int events = 0;
  REQUIRE(parser.feed("data\n\n", [&](const SseEvent& e) {
    ++events;
    CHECK(e.data.empty());
    CHECK(e.data.data() != nullptr);
    return true;
  }));
  CHECK(events == 1);
}

TEST_CASE("An event without a terminating blank line is not dispatched") {
  SseParser parser;
  int events = 0;
  REQUIRE(parser.feed("data: partial\n", [&](const SseEvent&) { return ++events, true; }));
  CHECK(events == 0);
  CHECK(parser.has_partial_event());
}

TEST_CASE("A blank line with no data dispatches nothing and resets the event name") {
  std::vector<Seen> seen = parse_in_pieces("event: ping\n\ndata: x\n\n", 3);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == Seen{"", "x"});
}

TEST_CASE("An oversized event is refused instead of buffered without bound") {
  SseParser parser(64);
  std::string big = "data: " + std::string(100, 'x');
  CHECK_FALSE(parser.feed(big, [](const SseEvent&) { return true; }));
  // A whole line within one feed, and data lines that add up past the limit.
  SseParser whole(64);
  CHECK_FALSE(whole.feed(big + "\n", [](const SseEvent&) { return true; }));
  SseParser adding(64);
  bool ok = true;
  for (int i = 0; i < 10 && ok; ++i) ok = adding.feed("data: 0123456789\n", [](const SseEvent&) { return true; });
  CHECK_FALSE(ok);
}

TEST_CASE("The handler can stop the stream") {
  SseParser parser;
  int events = 0;
  CHECK_FALSE(parser.feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) { return ++events < 1; }));
  CHECK(events == 1);
}

}  // namespace
}  // namespace llmguard::internal
