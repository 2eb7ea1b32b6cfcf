// The budget side of one call: before each attempt it reserves an upper bound
// of what the attempt can cost, after it settles what was spent. Learns, per
// target, how far billing runs past max_tokens, so that the next
// reservations cover it. Event-loop thread only, like the call that owns it.
#ifndef LLMGUARD_SRC_ATTEMPT_BUDGET_H_
#define LLMGUARD_SRC_ATTEMPT_BUDGET_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ledger.h"
#include "llmguard/error.h"
#include "llmguard/options.h"
#include "llmguard/types.h"

namespace llmguard::internal {

// What an attempt's reservation is settled with.
enum class Spent : std::uint8_t {
  kNothing,   // released: no request, or an error reply (not billed)
  kUnknown,   // kept whole: the provider may bill what it never reported
  kReported,  // the usage the reply reported
};

class AttemptBudget {
 public:
  using WallTime = std::chrono::system_clock::time_point;

  AttemptBudget(BudgetBook& book, std::string_view caller_tag) : book_(book), caller_tag_(caller_tag) {}

  // What an attempt to one target may cost at most.
  struct Bound {
    std::string_view target, model;  // for the refusal's message
    const std::optional<Price>& price;
    std::int64_t prompt_bytes;      // the request body's size
    std::int64_t requested_output;  // max_tokens as sent
    double& output_scale;           // the target's learned factor on output tokens (>= 1)
    // The request set no max_tokens: requested_output is ClientOptions::budget_default_max_tokens.
    bool default_output = false;
  };
  // Reserves the bound on every budget that applies; a kBudgetExceeded error
  // when one would be overrun (or the target has no price under a USD budget).
  std::optional<Error> reserve(const Bound& bound, WallTime now);

  // A reply billed beyond its reservation.
  struct Overrun {
    double billed_usd, reserved_usd;
    std::int64_t billed_tokens, reserved_tokens;
    std::int64_t completion_tokens;
    double output_scale;  // the target's factor after learning from it
  };
  // What a settled reservation was replaced by.
  struct Settled {
    double usd = 0;
    std::int64_t tokens = 0;
  };
  // Settles the open reservation (a no-op when none is open); `settled`, if
  // given, is set to what it was replaced by.
  std::optional<Overrun> settle(Spent spent, const Usage* usage, const std::optional<Price>& price,
                                double& output_scale, WallTime now, Settled* settled = nullptr);
  // The open reservation, if any: what the fleet is asked to hold too.
  const std::optional<BudgetBook::Reservation>& reservation() const { return reservation_; }

 private:
  BudgetBook& book_;
  const std::string caller_tag_;
  std::optional<BudgetBook::Reservation> reservation_;
  std::int64_t reserved_output_tokens_ = 0;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_ATTEMPT_BUDGET_H_
