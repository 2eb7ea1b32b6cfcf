// The `llmguard` command: classify, chat, doctor, mock. Streams are passed in
// so tests run the exact code the binary runs.
#ifndef LLMGUARD_TOOLS_CLI_CLI_H_
#define LLMGUARD_TOOLS_CLI_CLI_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace llmguard::cli {

// JSON Lines in, one JSON line out per input line, in order; returns 0 once
// all input was read.
int run_classify(std::istream& in, std::ostream& out);

// `args` are the words after the subcommand. Returns the exit status.
int run_chat(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_doctor(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

int run_cli(int argc, char** argv, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace llmguard::cli

#endif  // LLMGUARD_TOOLS_CLI_CLI_H_
