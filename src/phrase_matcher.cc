#include "phrase_matcher.h"

#include <cstdlib>
#include <deque>

namespace llmguard::internal {

std::uint16_t PhraseMatcher::add(std::string_view phrase) {
  std::string key(phrase);
  if (auto it = ids_.find(key); it != ids_.end()) return it->second;
  if (phrases_.size() >= kMaxPhrases) std::abort();  // a rule table outgrew PhraseBits: a build-time bug
  const auto id = static_cast<std::uint16_t>(phrases_.size());
  phrases_.push_back(key);
  ids_.emplace(std::move(key), id);
  return id;
}

void PhraseMatcher::build() {
  // Only bytes that appear in some phrase need a column of their own.
  for (const auto& p : phrases_) {
    for (unsigned char c : p) {
      if (byte_class_[c] == 0) byte_class_[c] = static_cast<std::uint8_t>(classes_++);
    }
  }
  const std::size_t k = classes_;
  // Trie; -1 marks a missing edge until the DFA is completed below.
  next_.assign(k, -1);
  out_.assign(1, {});
  for (std::size_t id = 0; id < phrases_.size(); ++id) {
    std::size_t state = 0;
    for (unsigned char c : phrases_[id]) {
      const std::size_t slot = state * k + byte_class_[c];
      if (next_[slot] < 0) {
        next_[slot] = static_cast<std::int32_t>(out_.size());
        out_.emplace_back();
        next_.resize(next_.size() + k, -1);
      }
      state = static_cast<std::size_t>(next_[slot]);
    }
    out_[state].push_back(static_cast<std::uint16_t>(id));
  }
  // Breadth-first: failure links, inherited outputs, and missing edges
  // redirected along the failure link so scanning never backtracks.
  std::vector<std::int32_t> fail(out_.size(), 0);
  std::deque<std::size_t> queue;
  for (std::size_t c = 0; c < k; ++c) {
    if (next_[c] < 0) {
      next_[c] = 0;
    } else {
      queue.push_back(static_cast<std::size_t>(next_[c]));
    }
  }
  while (!queue.empty()) {
    const std::size_t u = queue.front();
    queue.pop_front();
    for (std::size_t c = 0; c < k; ++c) {
      const std::size_t slot = u * k + c;
      const std::int32_t via_fail = next_[static_cast<std::size_t>(fail[u]) * k + c];
      if (next_[slot] < 0) {
        next_[slot] = via_fail;
        continue;
      }
      const auto v = static_cast<std::size_t>(next_[slot]);
      fail[v] = via_fail;
      const auto& inherited = out_[static_cast<std::size_t>(via_fail)];
      out_[v].insert(out_[v].end(), inherited.begin(), inherited.end());
      queue.push_back(v);
    }
  }
  for (auto& entry : next_) {
    const auto target = static_cast<std::size_t>(entry);
    entry = static_cast<std::int32_t>(target * k * 2 + (out_[target].empty() ? 0 : 1));
  }
}

void PhraseMatcher::scan(std::string_view text, Found& found) const {
  std::size_t row = 0;
  for (unsigned char c : text) {
    const auto entry = static_cast<std::size_t>(next_[row + byte_class_[c]]);
    row = entry >> 1;
    if (entry & 1) {
      for (auto id : out_[row / classes_]) found.set(id);
    }
  }
}

}  // namespace llmguard::internal
