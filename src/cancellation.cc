#include "cancellation.h"

namespace llmguard {

CancellationToken::CancellationToken() : state_(std::make_shared<State>()) {}

void CancellationToken::cancel() const {
  std::vector<std::pair<std::uint64_t, std::function<void()>>> callbacks;
  {
    std::lock_guard lock(state_->mu);
    if (state_->cancelled.exchange(true)) return;
    callbacks.swap(state_->callbacks);
  }
  // Outside the lock: a callback may unsubscribe or cancel again.
  for (auto& [id, fn] : callbacks) fn();
}

bool CancellationToken::cancelled() const noexcept { return state_->cancelled.load(); }

std::uint64_t CancellationToken::State::subscribe(std::function<void()> fn) {
  {
    std::lock_guard lock(mu);
    if (!cancelled.load()) {
      const std::uint64_t id = next_id++;
      callbacks.emplace_back(id, std::move(fn));
      return id;
    }
  }
  fn();
  return 0;
}

void CancellationToken::State::unsubscribe(std::uint64_t id) {
  if (id == 0) return;
  std::lock_guard lock(mu);
  std::erase_if(callbacks, [id](const auto& entry) { return entry.first == id; });
}

}  // namespace llmguard
