#include "llmguard/runtime.h"

#include <mutex>
#include <random>

#include "llmguard/types.h"
#include "text.h"

namespace llmguard {
namespace {

class RealClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point wall_now() const override { return std::chrono::system_clock::now(); }
};

class SystemRandom final : public RandomSource {
 public:
  SystemRandom() {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    engine_.seed(seed);
  }
  std::uint64_t next_u64() override {
    std::lock_guard lock(mu_);
    return engine_();
  }

 private:
  std::mutex mu_;
  std::mt19937_64 engine_;
};

}  // namespace

Clock& real_clock() {
  static auto* clock = new RealClock();
  return *clock;
}

RandomSource& system_random() {
  static auto* random = new SystemRandom();
  return *random;
}

const std::string* find_header(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (internal::iequals(key, name)) return &value;
  }
  return nullptr;
}

Message Message::system(std::string text) { return {.role = Role::kSystem, .content = std::move(text)}; }
Message Message::user(std::string text) { return {.role = Role::kUser, .content = std::move(text)}; }
Message Message::assistant(std::string text) { return {.role = Role::kAssistant, .content = std::move(text)}; }
Message Message::assistant(const ChatResponse& reply) {
  return {.role = Role::kAssistant, .content = reply.content, .tool_calls = reply.tool_calls};
}
Message Message::tool_result(std::string tool_call_id, std::string text) {
  return {.role = Role::kTool, .content = std::move(text), .tool_call_id = std::move(tool_call_id)};
}
Message Message::tool_error(std::string tool_call_id, std::string text) {
  Message m = tool_result(std::move(tool_call_id), std::move(text));
  m.is_error = true;
  return m;
}

}  // namespace llmguard
