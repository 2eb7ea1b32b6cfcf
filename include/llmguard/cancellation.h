// Cancellation of calls in flight from any thread.
#ifndef LLMGUARD_CANCELLATION_H_
#define LLMGUARD_CANCELLATION_H_

#include <memory>

namespace llmguard {

// Lets another thread stop a call. Copies share one state. Thread-safe.
class CancellationToken {
 public:
  CancellationToken();
  void cancel() const;
  bool cancelled() const noexcept;

  struct State;  // defined in the implementation
  const std::shared_ptr<State>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace llmguard

#endif  // LLMGUARD_CANCELLATION_H_
