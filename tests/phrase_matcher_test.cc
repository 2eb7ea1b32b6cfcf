#include "phrase_matcher.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using llmguard::internal::PhraseBits;
using llmguard::internal::PhraseMatcher;
using llmguard::internal::PhraseSet;

namespace {

PhraseBits scan(const PhraseMatcher& m, std::string_view text) {
  PhraseBits found;
  m.scan(text, found);
  return found;
}

}  // namespace

TEST_CASE("Every phrase is found, including ones inside or overlapping others") {
  PhraseMatcher m;
  const auto he = m.add("he");
  const auto she = m.add("she");
  const auto his = m.add("his");
  const auto hers = m.add("hers");
  m.build();
  const PhraseBits found = scan(m, "ushers");
  CHECK(found.test(he));  // inside "she" and "hers"
  CHECK(found.test(she));
  CHECK(found.test(hers));  // overlaps "she"
  CHECK_FALSE(found.test(his));
}

TEST_CASE("Adding a phrase twice returns its id; absent phrases stay unset") {
  PhraseMatcher m;
  const auto a = m.add("rate limit");
  CHECK(m.add("rate limit") == a);
  const auto b = m.add("quota");
  m.build();
  CHECK(scan(m, "").word(0) == 0);
  CHECK(scan(m, "rate limi").word(0) == 0);  // a prefix is no match
  CHECK(scan(m, "the rate limit was hit").test(a));
  CHECK_FALSE(scan(m, "the rate limit was hit").test(b));
}

TEST_CASE("Bytes in no phrase reset the match, whatever their value") {
  PhraseMatcher m;
  const auto id = m.add("abc");
  m.build();
  CHECK_FALSE(scan(m, std::string("ab\xff"
                                  "c"))
                  .test(id));
  CHECK_FALSE(scan(m, std::string("ab\0c", 4)).test(id));
  CHECK(scan(m, std::string("\x80\xff"
                            "abc\0",
                            6))
            .test(id));
}

TEST_CASE("Phrase sets span the words of the bit set") {
  PhraseMatcher m;
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) names.push_back("w" + std::to_string(i) + ";");
  std::vector<std::uint16_t> ids;
  for (const auto& n : names) ids.push_back(m.add(n));
  PhraseSet low(m, {"w3;"});
  PhraseSet spread(m, {"w10;", "w70;", "w150;"});  // three different 64-bit words
  m.build();
  CHECK(low.any(scan(m, "x w3; y")));
  CHECK_FALSE(low.any(scan(m, "x w33 y")));
  CHECK(spread.any(scan(m, "w150;")));
  CHECK(spread.any(scan(m, "w70;")));
  CHECK_FALSE(spread.any(scan(m, "w71; w15; w1500")));
  CHECK(scan(m, "w199;").test(ids[199]));
}
