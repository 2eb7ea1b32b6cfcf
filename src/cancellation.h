#ifndef LLMGUARD_SRC_CANCELLATION_H_
#define LLMGUARD_SRC_CANCELLATION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "llmguard/cancellation.h"

namespace llmguard {

struct CancellationToken::State {
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::uint64_t next_id = 1;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> callbacks;

  // Runs `fn` once when the token is cancelled (at once if it already is).
  // Returns an id for `unsubscribe`, 0 if `fn` already ran.
  std::uint64_t subscribe(std::function<void()> fn);
  void unsubscribe(std::uint64_t id);
};

}  // namespace llmguard

#endif  // LLMGUARD_SRC_CANCELLATION_H_
