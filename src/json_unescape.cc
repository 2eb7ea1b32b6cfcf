#include "json_unescape.h"

#include <cstdint>
#include <utility>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LLMGUARD_BLOCK_UNESCAPE 1
#endif

namespace llmguard::internal {

#ifdef LLMGUARD_BLOCK_UNESCAPE

namespace {

constexpr std::uint64_t kEvenBits = 0x5555555555555555ULL;
constexpr std::uint64_t kOddBits = ~kEvenBits;

// Which bytes of a block a backslash escapes, given the block's backslashes
// and whether its first byte is escaped by the block before. In a run of
// backslashes that starts at s, the bytes s+1, s+3, ... (up to the byte just
// past the run) are escaped. Adding a run's start bit to the backslash mask
// carries through the run: the bits that flip are the run and the byte past
// it, and the escaped ones among them are those of the other parity than s.
// Runs of even and of odd start are done by separate additions.
constexpr std::uint64_t escaped_bytes(std::uint64_t backslashes, std::uint64_t first_escaped) {
  const std::uint64_t bs = backslashes & ~first_escaped;  // an escaped backslash escapes nothing
  const std::uint64_t starts = bs & ~(bs << 1);
  const std::uint64_t flipped_even = (bs + (starts & kEvenBits)) ^ bs;
  const std::uint64_t flipped_odd = (bs + (starts & kOddBits)) ^ bs;
  return first_escaped | (flipped_even & kOddBits) | (flipped_odd & kEvenBits);
}

static_assert(escaped_bytes(0b011, 0) == 0b010);   // "\\" then a byte: the second backslash is escaped
static_assert(escaped_bytes(0b001, 0) == 0b010);   // "\n"
static_assert(escaped_bytes(0b010, 0) == 0b100);   // "a\n"
static_assert(escaped_bytes(0b111, 0) == 0b1010);  // "\\\" escapes the byte after
static_assert(escaped_bytes(0b011, 1) == 0b101);   // first backslash escaped by the block before
static_assert(escaped_bytes(0, 0) == 0 && escaped_bytes(0, 1) == 1);

// What the byte after a backslash stands for; 0 where it is no escape of
// JSON's (\u is one, but not one this unescaper decodes).
struct EscapeTable {
  alignas(64) char bytes[128] = {};
};
constexpr EscapeTable escape_table() {
  EscapeTable t;
  constexpr std::pair<char, char> kEscapes[] = {{'"', '"'},  {'\\', '\\'}, {'/', '/'},  {'b', '\b'},
                                                {'f', '\f'}, {'n', '\n'},  {'r', '\r'}, {'t', '\t'}};
  for (auto [letter, byte] : kEscapes) t.bytes[static_cast<unsigned char>(letter)] = byte;
  return t;
}
constexpr EscapeTable kEscapeMeaning = escape_table();

__attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vbmi2,bmi,popcnt"))) const char* unescape_blocks(
    const char* at, const char* end, char* out_at, char** out_end) {
  const __m512i quote = _mm512_set1_epi8('"');
  const __m512i backslash = _mm512_set1_epi8('\\');
  const __m512i space = _mm512_set1_epi8(0x20);
  const __m512i table_low = _mm512_load_si512(kEscapeMeaning.bytes);
  const __m512i table_high = _mm512_load_si512(kEscapeMeaning.bytes + 64);
  std::uint64_t first_escaped = 0;
  for (const char* p = at; p < end; p += 64) {
    const auto left = static_cast<std::size_t>(end - p);
    const std::uint64_t present = left >= 64 ? ~0ULL : (1ULL << left) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(present, p);
    const std::uint64_t bs = _mm512_cmpeq_epi8_mask(v, backslash) & present;
    const std::uint64_t escaped = escaped_bytes(bs, first_escaped) & present;
    const std::uint64_t closing = _mm512_cmpeq_epi8_mask(v, quote) & present & ~escaped;
    const std::uint64_t inside = closing ? (closing & -closing) - 1 : present;
    if (_mm512_cmplt_epu8_mask(v, space) & inside) return nullptr;
    const std::uint64_t escapes = escaped & inside;
    // Each escaped byte looked up in one 128-byte table (bytes past 0x7f
    // have no escape; the lookup ignores their top bit, the mask does not).
    const __m512i meaning = _mm512_permutex2var_epi8(table_low, v, table_high);
    const std::uint64_t known = _mm512_test_epi8_mask(meaning, meaning) & ~_mm512_movepi8_mask(v);
    if (escapes & ~known) return nullptr;  // \u, or no escape at all
    const __m512i translated = _mm512_mask_blend_epi8(escapes, v, meaning);
    const std::uint64_t keep = inside & ~(bs & ~escaped);
    _mm512_storeu_si512(out_at, _mm512_maskz_compress_epi8(keep, translated));
    out_at += _mm_popcnt_u64(keep);
    if (closing) {
      *out_end = out_at;
      return p + __builtin_ctzll(closing);
    }
    first_escaped = (bs & ~escaped) >> 63;
  }
  return nullptr;
}

}  // namespace

bool block_unescape_available() noexcept {
  static const bool available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2") &&
                                __builtin_cpu_supports("popcnt");
  return available;
}

const char* append_unescaped(const char* at, const char* end, std::string& out) {
  const std::size_t before = out.size();
  // Room for every byte and for the last block's full 64-byte store.
  out.resize(before + static_cast<std::size_t>(end - at) + 64);
  char* written = nullptr;
  const char* closing = unescape_blocks(at, end, out.data() + before, &written);
  out.resize(closing ? static_cast<std::size_t>(written - out.data()) : before);
  return closing;
}

#else

bool block_unescape_available() noexcept { return false; }

const char* append_unescaped(const char*, const char*, std::string&) { return nullptr; }

#endif

}  // namespace llmguard::internal
