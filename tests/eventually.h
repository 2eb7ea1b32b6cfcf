// Waits for what another thread or process makes true (a message on a
// channel, a process reaching the upstream), up to a generous limit: never
// a fixed sleep standing in for it.
#ifndef LLMGUARD_TESTS_EVENTUALLY_H_
#define LLMGUARD_TESTS_EVENTUALLY_H_

#include <chrono>
#include <thread>

namespace llmguard::testing {

template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace llmguard::testing

#endif  // LLMGUARD_TESTS_EVENTUALLY_H_
