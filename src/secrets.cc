#include "secrets.h"

#include <algorithm>
#include <cstdlib>

#include "providers/wire_api.h"
#include "state/redis_connection.h"
#include "text.h"

namespace llmguard::internal {
namespace {

void add(std::vector<std::string>& out, std::string_view value) {
  value = trim(value);
  if (value.empty()) return;
  if (std::find(out.begin(), out.end(), value) == out.end()) out.emplace_back(value);
}

void add_env(std::vector<std::string>& out, const std::string& name) {
  if (name.empty()) return;
  if (const char* value = std::getenv(name.c_str())) add(out, value);
}

void add_header_value(std::vector<std::string>& out, std::string_view name, std::string_view value) {
  add(out, value);
  // Servers echo the token without its scheme ("Incorrect API key provided: <token>").
  const std::string_view v = trim(value);
  if (const auto space = v.find(' '); space != std::string_view::npos) add(out, v.substr(space + 1));
  if (icontains(name, "cookie")) {
    for (std::size_t start = 0; start <= v.size();) {
      std::size_t end = v.find(';', start);
      if (end == std::string_view::npos) end = v.size();
      const std::string_view pair = v.substr(start, end - start);
      if (const auto eq = pair.find('='); eq != std::string_view::npos) add(out, pair.substr(eq + 1));
      start = end + 1;
    }
  }
}

}  // namespace

bool is_credential_header(std::string_view name) noexcept {
  static constexpr std::string_view kExact[] = {"authorization", "proxy-authorization", "api-key", "x-api-key",
                                                "x-goog-api-key"};
  static constexpr std::string_view kParts[] = {"key",      "token",  "secret",     "auth",
                                                "password", "passwd", "credential", "cookie"};
  const std::string_view n = trim(name);
  for (std::string_view e : kExact) {
    if (iequals(n, e)) return true;
  }
  for (std::string_view p : kParts) {
    if (icontains(n, p)) return true;
  }
  return false;
}

std::vector<std::string> credentials_of(const ClientOptions& options) {
  std::vector<std::string> out;
  for (const Target& t : options.targets) {
    add(out, t.api_key);
    add_env(out, t.api_key_env);
    if (t.api_key.empty() && t.api_key_env.empty()) {
      for (std::string_view name : wire_api(t.provider).credential_envs()) add_env(out, std::string(name));
    }
    for (const auto& [name, value] : t.headers) {
      if (is_credential_header(name)) add_header_value(out, name, value);
    }
  }
  if (const auto& shared = options.shared_state) {
    // The Redis password, from the URL (raw and percent-decoded) or its variable.
    if (auto endpoint = parse_redis_url(shared->redis_url); endpoint.ok()) add(out, endpoint->password);
    const std::string_view url = shared->redis_url;
    const std::size_t scheme = url.find("://");
    const std::size_t at = url.rfind('@');
    if (scheme != std::string_view::npos && at != std::string_view::npos && at > scheme) {
      const std::string_view userinfo = url.substr(scheme + 3, at - scheme - 3);
      if (const std::size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
        add(out, userinfo.substr(colon + 1));
      }
    }
    add_env(out, shared->password_env);
  }
  return out;
}

Redactor::Redactor(std::vector<std::string> secrets) {
  for (std::string& s : secrets) {
    if (s.size() < kMinSecretLength) continue;
    s = to_lower(s);
    if (std::find(secrets_.begin(), secrets_.end(), s) != secrets_.end()) continue;
    first_bytes_[static_cast<unsigned char>(s[0])] = true;
    secrets_.push_back(std::move(s));
  }
  // Longest first, so a key that contains another is masked whole.
  std::stable_sort(secrets_.begin(), secrets_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::size_t Redactor::scan(std::string_view text, bool at_end, std::string& out) const {
  std::size_t i = 0;
  while (i < text.size()) {
    if (!first_bytes_[static_cast<unsigned char>(ascii_lower(text[i]))]) {
      out += text[i++];
      continue;
    }
    const std::string_view rest = text.substr(i);
    std::size_t match = 0;
    bool may_begin = false;  // rest is a proper prefix of some secret
    for (const std::string& s : secrets_) {
      if (rest.size() >= s.size()) {
        if (match == 0 && iequals(rest.substr(0, s.size()), s)) match = s.size();
      } else if (iequals(rest, std::string_view(s).substr(0, rest.size()))) {
        may_begin = true;
      }
    }
    if (may_begin && !at_end) return i;  // the next piece decides
    if (may_begin && rest.size() >= kMinSecretLength) {
      out += kSecretMask;  // a secret cut off by truncation
      return text.size();
    }
    if (match > 0) {
      out += kSecretMask;
      i += match;
    } else {
      out += text[i++];
    }
  }
  return i;
}

std::string Redactor::redact(std::string_view text) const {
  if (secrets_.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  scan(text, true, out);
  return out;
}

std::string StreamRedactor::feed(std::string_view piece) {
  if (redactor_.empty()) return std::string(piece);
  pending_ += piece;
  std::string out;
  pending_.erase(0, redactor_.scan(pending_, false, out));
  return out;
}

std::string StreamRedactor::finish() {
  std::string out;
  redactor_.scan(pending_, true, out);
  pending_.clear();
  return out;
}

}  // namespace llmguard::internal
