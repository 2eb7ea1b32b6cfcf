#ifndef LLMGUARD_TOOLS_MOCK_MOCK_CLI_H_
#define LLMGUARD_TOOLS_MOCK_MOCK_CLI_H_

namespace llmguard::mock {
// The mock's command line; argv[0] is the command name. Returns the exit code.
int run_mock_cli(int argc, char** argv);
}  // namespace llmguard::mock

#endif  // LLMGUARD_TOOLS_MOCK_MOCK_CLI_H_
