#include "secrets.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>

namespace llmguard::internal {
namespace {

TEST_CASE("Credential headers: the well-known names and any name that says key, token, secret, auth, cookie") {
  for (const char* name :
       {"Authorization", "proxy-authorization", "api-key", "X-API-Key", "x-goog-api-key", "x-gateway-key",
        "X-Auth-Token", "x-client-secret", "x-db-password", "Cookie", "x-amz-security-token", "x-credential"}) {
    CAPTURE(name);
    CHECK(is_credential_header(name));
  }
  for (const char* name : {"x-team", "content-type", "anthropic-version", "user-agent", "x-request-id"}) {
    CAPTURE(name);
    CHECK_FALSE(is_credential_header(name));
  }
}

TEST_CASE("credentials_of: api keys, the value of api_key_env, and credential header values with and without scheme") {
  ::setenv("LLMGUARD_SECRETS_TEST_KEY", "env-secret-value-42", 1);
  ClientOptions o;
  o.targets.push_back({.name = "a", .model = "m", .api_key = "corp-secret-0123456789abcdef"});
  o.targets.push_back({.name = "b",
                       .model = "m",
                       .api_key_env = "LLMGUARD_SECRETS_TEST_KEY",
                       .headers = {{"Authorization", "Bearer gw-token-abcdefgh"},
                                   {"x-gateway-key", "gateway-key-12345678"},
                                   {"cookie", "session=cookie-value-999; theme=dark"},
                                   {"x-team", "agents-team-visible"}}});
  o.targets.push_back({.name = "c", .model = "m", .api_key_env = "LLMGUARD_SECRETS_TEST_UNSET_VAR"});
  ::unsetenv("LLMGUARD_SECRETS_TEST_UNSET_VAR");
  const auto secrets = credentials_of(o);
  auto has = [&](std::string_view s) { return std::find(secrets.begin(), secrets.end(), s) != secrets.end(); };
  CHECK(has("corp-secret-0123456789abcdef"));
  CHECK(has("env-secret-value-42"));
  CHECK(has("Bearer gw-token-abcdefgh"));
  CHECK(has("gw-token-abcdefgh"));
  CHECK(has("gateway-key-12345678"));
  CHECK(has("cookie-value-999"));
  CHECK_FALSE(has("agents-team-visible"));
  CHECK_FALSE(has(""));
  ::unsetenv("LLMGUARD_SECRETS_TEST_KEY");
}

TEST_CASE("credentials_of: a target with no key of its own exposes the provider's default variable") {
  ::setenv("ANTHROPIC_API_KEY", "default-anthropic-key-1", 1);
  ClientOptions o;
  o.targets.push_back({.name = "a", .provider = Provider::kAnthropic, .model = "m"});
  const auto secrets = credentials_of(o);
  CHECK(std::find(secrets.begin(), secrets.end(), "default-anthropic-key-1") != secrets.end());
  ::unsetenv("ANTHROPIC_API_KEY");
}

TEST_CASE("Redactor masks every occurrence, in any case, and keeps the rest of the text") {
  const Redactor r({"corp-secret-0123456789abcdef", "gw-token-abcdefgh"});
  CHECK(r.redact("key corp-secret-0123456789abcdef rejected; again: corp-secret-0123456789abcdef.") ==
        "key *** rejected; again: ***.");
  CHECK(r.redact("CORP-SECRET-0123456789ABCDEF") == "***");
  CHECK(r.redact("Bearer gw-token-abcdefgh") == "Bearer ***");
  CHECK(r.redact("nothing to see") == "nothing to see");
  CHECK(r.redact("") == "");
}

TEST_CASE("Redactor masks a truncated tail of a secret at the very end, from 8 bytes on") {
  const Redactor r({"corp-secret-0123456789abcdef"});
  CHECK(r.redact("Incorrect API key provided: corp-sec") == "Incorrect API key provided: ***");
  CHECK(r.redact("Incorrect API key provided: corp-secret-0123") == "Incorrect API key provided: ***");
  // Seven bytes could be any word; and a prefix not at the end is not a cut-off key.
  CHECK(r.redact("ends with corp-se") == "ends with corp-se");
  CHECK(r.redact("corp-secret- is a prefix") == "corp-secret- is a prefix");
}

TEST_CASE("Redactor ignores secrets too short to be real and masks a longer key that contains a shorter one whole") {
  const Redactor short_ones({"none", "x", "local"});
  CHECK(short_ones.empty());
  CHECK(short_ones.redact("none of the local x") == "none of the local x");
  const Redactor nested({"secret-12345678", "secret-12345678-extended"});
  CHECK(nested.redact("a secret-12345678-extended b") == "a *** b");
  CHECK(nested.redact("a secret-12345678 b") == "a *** b");
}

TEST_CASE("StreamRedactor masks a secret split across pieces and holds back only what may begin one") {
  const Redactor r({"corp-secret-0123456789abcdef"});
  StreamRedactor s(r);
  std::string shown;
  shown += s.feed("your key is corp-");
  CHECK(shown == "your key is ");  // "corp-" may begin the key
  shown += s.feed("secret-0123");
  shown += s.feed("456789ABCDEF and more");
  shown += s.finish();
  CHECK(shown == "your key is *** and more");

  StreamRedactor t(r);
  CHECK(t.feed("hello ") == "hello ");
  CHECK(t.feed("cor") == "");
  CHECK(t.feed("al reef") == "coral reef");  // not the key after all
  CHECK(t.finish() == "");

  StreamRedactor u(r);
  std::string cut = u.feed("tail corp-secret-01");
  cut += u.finish();  // the stream ended inside the key
  CHECK(cut == "tail ***");
}

TEST_CASE("StreamRedactor one byte at a time shows exactly what redact() shows") {
  const Redactor r({"corp-secret-0123456789abcdef", "gateway-key-12345678"});
  const std::string text =
      "a corp-secret-0123456789abcdef b Gateway-Key-12345678 c corp-secret-x gateway-key-1234 corp-secret-0123456789ab";
  StreamRedactor s(r);
  std::string shown;
  for (char c : text) shown += s.feed(std::string_view(&c, 1));
  shown += s.finish();
  CHECK(shown == r.redact(text));
  CHECK(shown.find("0123456789") == std::string::npos);
  CHECK(shown.find("12345678") == std::string::npos);
}

TEST_CASE("An empty Redactor passes text through") {
  const Redactor r;
  CHECK(r.empty());
  StreamRedactor s(r);
  CHECK(s.feed("anything corp-") == "anything corp-");
  CHECK(s.finish() == "");
}

}  // namespace
}  // namespace llmguard::internal
