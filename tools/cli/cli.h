// The `llmguard` command: classify, chat, doctor, mock. Streams are passed in
// so tests run the exact code the binary runs.
#ifndef LLMGUARD_TOOLS_CLI_CLI_H_
#define LLMGUARD_TOOLS_CLI_CLI_H_

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace llmguard::cli {

// JSON Lines in, one JSON line out per input line, in order; returns 0 once
// all input was read. `args`: --explain adds "rule" and "evidence" to each
// answer; --config FILE applies that config's classifier_rules.
int run_classify(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

// `args` are the words after the subcommand. Returns the exit status. `in`
// is read for `--message -` and `--request -`.
int run_chat(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);
int run_doctor(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Makes text safe to copy to a terminal: C0 controls other than \n and \t,
// DEL, and the C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F) become visible
// escapes ("\x1b", "\x7f", "\u009b"), so a model's reply cannot move the
// cursor, retitle the window or hide text. For text that comes in pieces, a
// C2 byte that ends one piece waits for the next.
class TerminalEscaper {
 public:
  std::string feed(std::string_view piece);
  std::string finish();  // what is held back, at the end

 private:
  bool held_c2_ = false;
};
std::string escape_terminal_controls(std::string_view text);

int run_cli(int argc, char** argv, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace llmguard::cli

#endif  // LLMGUARD_TOOLS_CLI_CLI_H_
