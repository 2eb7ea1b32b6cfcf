// Finds which of a fixed set of phrases occur in a text, in one pass
// (Aho-Corasick over byte classes). The classifier's rules name a few hundred
// phrases; searching for each separately cost microseconds per error.
#ifndef LLMGUARD_SRC_PHRASE_MATCHER_H_
#define LLMGUARD_SRC_PHRASE_MATCHER_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llmguard::internal {

// Which phrases a scan saw, one bit per phrase id.
class PhraseBits {
 public:
  static constexpr std::size_t kCapacity = 512;
  void set(std::uint16_t id) { words_[id / 64] |= std::uint64_t{1} << (id % 64); }
  bool test(std::uint16_t id) const { return (words_[id / 64] >> (id % 64)) & 1; }
  std::uint64_t word(std::size_t i) const { return words_[i]; }

 private:
  std::array<std::uint64_t, kCapacity / 64> words_{};
};

class PhraseMatcher {
 public:
  static constexpr std::size_t kMaxPhrases = PhraseBits::kCapacity;
  using Found = PhraseBits;

  // Adds a phrase (lower case, as the scanned text is) before build();
  // returns its id. Adding a phrase twice returns the same id.
  std::uint16_t add(std::string_view phrase);
  void build();
  // Sets the bit of every phrase that occurs in `text`.
  void scan(std::string_view text, Found& found) const;
  std::string_view phrase(std::uint16_t id) const { return phrases_[id]; }

 private:
  std::vector<std::string> phrases_;
  std::unordered_map<std::string, std::uint16_t> ids_;
  std::array<std::uint8_t, 256> byte_class_{};  // bytes in no phrase share class 0
  std::size_t classes_ = 1;
  // A full DFA. Built as state * classes_ + class -> state; build() then
  // rewrites each entry as (row offset of the next state) * 2 + (1 if
  // phrases end there), so scanning needs no multiply and looks at out_
  // only on a match.
  std::vector<std::int32_t> next_;
  std::vector<std::vector<std::uint16_t>> out_;  // phrases ending at a state
};

// A named group of phrases; true when any of them occurred. Kept as the few
// (word, mask) pairs its ids fall in, so a test is a handful of ANDs.
class PhraseSet {
 public:
  PhraseSet() = default;
  PhraseSet(PhraseMatcher& matcher, std::initializer_list<std::string_view> phrases) {
    for (auto p : phrases) insert(matcher, p);
  }
  void insert(PhraseMatcher& matcher, std::string_view phrase) {
    const std::uint16_t id = matcher.add(phrase);
    const std::size_t word = id / 64;
    const std::uint64_t bit = std::uint64_t{1} << (id % 64);
    auto it = std::find_if(masks_.begin(), masks_.end(), [word](const auto& m) { return m.first == word; });
    if (it == masks_.end()) {
      masks_.emplace_back(word, bit);
    } else {
      it->second |= bit;
    }
  }
  bool empty() const { return masks_.empty(); }
  bool any(const PhraseBits& found) const {
    for (const auto& [word, mask] : masks_) {
      if (found.word(word) & mask) return true;
    }
    return false;
  }
  // The id of the lowest-numbered phrase of the set that occurred, or -1.
  int first(const PhraseBits& found) const {
    int best = -1;
    for (const auto& [word, mask] : masks_) {
      if (const std::uint64_t hit = found.word(word) & mask) {
        const int id = static_cast<int>(word * 64) + std::countr_zero(hit);
        if (best < 0 || id < best) best = id;
      }
    }
    return best;
  }

 private:
  std::vector<std::pair<std::size_t, std::uint64_t>> masks_;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_PHRASE_MATCHER_H_
