// Client configuration from JSON, the format `llmguard chat` and
// `llmguard doctor` read:
//
//   {"targets": [{"name": "primary", "provider": "openai", "base_url": "...",
//                 "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY",
//                 "context_window": 128000, "headers": {"x-team": "a"},
//                 "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
//                 "limits": {"max_concurrency": 8, "requests_per_minute": 500, "tokens_per_minute": 200000}}],
//    "retry": {"max_attempts": 3, "base_delay_ms": 500, "max_delay_ms": 20000,
//              "jitter": "full", "max_retry_after_ms": 30000,
//              "rules": [{"category": "content_filter", "action": "next_target"}]},
//    "timeouts": {"connect_ms": 10000, "total_ms": 120000, "ttft_ms": 60000, "idle_ms": 60000},
//    "deadline_ms": 60000,
//    "ca_file": "/etc/ssl/corp-ca.pem", "verify_tls": true,
//    "budget": {"usd": 5.0}}        // or "budgets": [{"usd", "tokens", "period", "caller_tag"}]
//
// "provider" is openai, azure, anthropic, openai-compatible, or a service
// name from provider_preset() ("gemini", "groq", "ollama", ...), which fills
// in base_url and api_key_env when they are not given.
// Unknown keys are errors (a typo must not silently become a default), and so
// are numbers of the wrong type or outside their field's range (the table in
// docs/guide.md): the error names the field and the range.
#ifndef LLMGUARD_CONFIG_H_
#define LLMGUARD_CONFIG_H_

#include <string>
#include <string_view>

#include "llmguard/client.h"

namespace llmguard {

Result<ClientOptions> parse_client_options(std::string_view json);
// Reads and parses a file; errors name the file.
Result<ClientOptions> load_client_options(const std::string& path);

}  // namespace llmguard

#endif  // LLMGUARD_CONFIG_H_
