// `llmguard-mock` / `llmguard mock`: serve the mock provider until SIGINT/SIGTERM.
//
//   llmguard-mock [--port N] [--host IP] [--seed N] [--faults SPEC]
//                 [--script FILE] [--require-key KEY]
//
// Prints "listening on http://HOST:PORT/v1" as its first stdout line, so a
// script can start it with --port 0 and read the port.
#include "mock_cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "mock_server.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

constexpr const char* kUsage =
    "usage: llmguard-mock [--port N] [--host IP] [--seed N] [--faults SPEC] [--script FILE]\n"
    "                     [--require-key KEY]\n"
    "  --faults rate_limit=0.2,quota=0,overloaded=0.1,server_error=0,bad_gateway=0,hang=0.02,reset=0,\n"
    "           retry_after_ms=100\n"
    "  --script FILE   JSON array of scripted replies, e.g. [{\"model\":\"gpt-a\",\"status\":429,\n"
    "                  \"headers\":{\"retry-after\":\"1\"},\"body\":\"...\",\"times\":2}]\n"
    "  control: POST /_mock/script (same array), GET /_mock/stats, POST /_mock/reset\n";

int usage(const char* message) {
  std::fprintf(stderr, "llmguard-mock: %s\n%s", message, kUsage);
  return 2;
}

}  // namespace

namespace llmguard::mock {

int run_mock_cli(int argc, char** argv) {
  llmguard::mock::MockOptions options;
  options.port = 8089;
  std::string script_file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* value = nullptr;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (!(value = next())) return usage(fmt::format("{} needs a value", arg).c_str());
    if (arg == "--port") options.port = std::atoi(value);
    else if (arg == "--host") options.host = value;
    else if (arg == "--seed") options.seed = std::strtoull(value, nullptr, 10);
    else if (arg == "--require-key") options.require_key = value;
    else if (arg == "--script") script_file = value;
    else if (arg == "--faults") {
      auto mix = llmguard::mock::parse_fault_mix(value);
      if (!mix.ok()) return usage(mix.error().message.c_str());
      options.faults = *mix;
    } else {
      return usage(fmt::format("unknown option {}", arg).c_str());
    }
  }
  auto server = llmguard::mock::MockServer::start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "llmguard-mock: %s\n", server.error().message.c_str());
    return 1;
  }
  if (!script_file.empty()) {
    std::ifstream in(script_file);
    if (!in) return usage(fmt::format("cannot read {}", script_file).c_str());
    std::stringstream text;
    text << in.rdbuf();
    auto script = llmguard::mock::parse_script(text.str());
    if (!script.ok()) return usage(script.error().message.c_str());
    for (auto& [model, reply] : *script) (*server)->enqueue(model, std::move(reply));
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::printf("listening on %s\n", (*server)->base_url().c_str());
  std::fflush(stdout);
  while (!g_stop) pause();
  return 0;
}

}  // namespace llmguard::mock
