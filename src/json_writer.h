// Appends JSON text to a string. Strings are escaped per RFC 8259; text that
// is not valid UTF-8 is refused by the caller-facing helpers, never written.
#ifndef LLMGUARD_SRC_JSON_WRITER_H_
#define LLMGUARD_SRC_JSON_WRITER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "llmguard/error.h"

namespace llmguard::internal {

// Offset of the first byte that breaks UTF-8 validity, or nullopt if `text`
// is valid UTF-8 (overlongs, surrogates and values above U+10FFFF included).
std::optional<std::size_t> find_invalid_utf8(std::string_view text) noexcept;

// Appends `text` as a quoted JSON string. `text` must be valid UTF-8.
void append_json_string(std::string& out, std::string_view text);

// Checks that `json` is one well-formed JSON value; the error names `field`.
Status validate_json(std::string_view json, std::string_view field);

// A minimal streaming writer; commas are placed automatically. Misuse (a value
// without a key inside an object) is a programming error caught by tests.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object() {
    before_value();
    out_ += '{';
    first_ = true;
    return *this;
  }
  JsonWriter& end_object() {
    out_ += '}';
    first_ = false;
    return *this;
  }
  JsonWriter& begin_array() {
    before_value();
    out_ += '[';
    first_ = true;
    return *this;
  }
  JsonWriter& end_array() {
    out_ += ']';
    first_ = false;
    return *this;
  }
  JsonWriter& key(std::string_view name);
  JsonWriter& string(std::string_view text) {
    before_value();
    append_json_string(out_, text);
    return *this;
  }
  JsonWriter& number(std::int64_t n);
  JsonWriter& number(double d);
  JsonWriter& boolean(bool b) {
    before_value();
    out_ += b ? "true" : "false";
    return *this;
  }
  JsonWriter& null() {
    before_value();
    out_ += "null";
    return *this;
  }
  // Writes already-serialised JSON (validated by the caller).
  JsonWriter& raw(std::string_view json) {
    before_value();
    out_ += json;
    return *this;
  }

 private:
  void before_value() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) out_ += ',';
    first_ = false;
  }
  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_JSON_WRITER_H_
