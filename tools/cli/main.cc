#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  return llmguard::cli::run_cli(argc, argv, std::cin, std::cout, std::cerr);
}
