// Unescaping one long JSON string 64 bytes at a time without a branch per
// escape. Model replies escape often (a newline, a quote or a backslash
// every 20 bytes in code-heavy answers), and a scanner that stops at each
// escape pays a mispredicted branch for it: that is most of what parsing a
// 64 KB completion costs. Here each 64-byte block is classified with mask
// arithmetic, its escapes translated in place and the backslashes squeezed
// out with one compress, so the cost is the same per block however many
// escapes it holds. Needs AVX-512 (VBMI2); elsewhere callers keep their
// usual parser.
#ifndef LLMGUARD_SRC_JSON_UNESCAPE_H_
#define LLMGUARD_SRC_JSON_UNESCAPE_H_

#include <cstddef>
#include <string>

namespace llmguard::internal {

// True when this CPU runs the block unescaper.
bool block_unescape_available() noexcept;

// Appends the JSON string that starts at `at` (just past its opening quote)
// to `out`, unescaped, and returns where its closing quote is. Returns
// nullptr, leaving `out` as it was, when there is no closing quote before
// `end`, when the string holds a control character or an unknown escape, or
// when it holds a \u escape (rare in model output: the caller's general
// parser handles those). Reads nothing at or past `end`. Only call when
// block_unescape_available().
const char* append_unescaped(const char* at, const char* end, std::string& out);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_JSON_UNESCAPE_H_
