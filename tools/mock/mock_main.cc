#include "mock_cli.h"

int main(int argc, char** argv) { return llmguard::mock::run_mock_cli(argc, argv); }
