#include "attempt_budget.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace llmguard::internal {

std::optional<Error> AttemptBudget::reserve(const Bound& b, WallTime now) {
  if (!b.price && book_.has_usd_budget_for(caller_tag_)) {
    return make_error(ErrorCategory::kBudgetExceeded,
                      fmt::format("target \"{}\" has no known price (model \"{}\"); under a USD budget it is "
                                  "never called unpriced: give the target a price",
                                  b.target, b.model));
  }
  // Upper bounds, so settled spend can never exceed what was reserved: a
  // byte-level BPE token is at least one byte, so the body's size bounds the
  // prompt; max_tokens bounds the output (it is sent for that reason) unless
  // the target has billed more than that before (reasoning models and
  // misbehaving proxies do), when the bound grows by what was seen.
  const std::int64_t output_bound =
      static_cast<std::int64_t>(std::ceil(static_cast<double>(b.requested_output) * b.output_scale));
  double usd = 0;
  if (b.price) {
    const double prompt_rate = std::max(b.price->input_per_mtok, b.price->cache_write_per_mtok.value_or(0.0));
    usd = (static_cast<double>(b.prompt_bytes) * prompt_rate +
           static_cast<double>(output_bound) * b.price->output_per_mtok) /
          1e6;
  }
  auto reservation = book_.reserve(caller_tag_, usd, b.prompt_bytes + output_bound, now);
  if (!reservation.ok()) {
    Error refused = std::move(reservation).error();
    if (b.default_output) {
      // A small budget refuses every such call; the cause is the missing max_tokens, not the budget.
      refused.message += fmt::format(" (for {} output tokens: the request sets no max_tokens)", output_bound);
      refused.hint = fmt::format(
          "the request sets no max_tokens, so each attempt reserves budget_default_max_tokens ({}) of output; "
          "set max_tokens to what the reply needs (or raise the budget if it is spent)",
          b.requested_output);
    }
    return refused;
  }
  reservation_ = std::move(*reservation);
  reserved_output_tokens_ = output_bound;
  return std::nullopt;
}

std::optional<AttemptBudget::Overrun> AttemptBudget::settle(Spent spent, const Usage* usage,
                                                            const std::optional<Price>& price, double& output_scale,
                                                            WallTime now, Settled* settled) {
  if (!reservation_) return std::nullopt;
  const BudgetBook::Reservation held = std::move(*reservation_);
  reservation_.reset();
  double usd = 0;
  std::int64_t tokens = 0;
  if (spent == Spent::kUnknown || (spent == Spent::kReported && usage->estimated)) {
    // An estimate could undercount; the reservation is a bound.
    usd = held.usd;
    tokens = held.tokens;
  } else if (spent == Spent::kReported) {
    usd = price ? cost_of(*usage, *price) : 0.0;
    tokens = usage->total_tokens;
  }
  book_.settle(held, usd, tokens, now);
  if (settled) *settled = {usd, tokens};
  if (spent != Spent::kReported || usage->estimated) return std::nullopt;
  // Relaxes towards 1 while replies fit; jumps to the largest ratio seen.
  constexpr double kMaxScale = 64, kRelax = 0.9;
  const double ratio = reserved_output_tokens_ > 0 ? static_cast<double>(usage->completion_tokens) /
                                                         static_cast<double>(reserved_output_tokens_)
                                                   : 1.0;
  output_scale = std::max({1.0, output_scale * kRelax, std::min(ratio * output_scale, kMaxScale)});
  if (usd - held.usd <= 1e-12 && tokens <= held.tokens) return std::nullopt;
  return Overrun{usd, held.usd, tokens, held.tokens, usage->completion_tokens, output_scale};
}

}  // namespace llmguard::internal
