#include "providers/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>

#include "text.h"

namespace llmguard::internal::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::string_view kUpperHexDigits = "0123456789ABCDEF";

using Digest = std::array<unsigned char, 32>;

// Key material, wiped when it goes out of scope.
struct SecretDigest {
  Digest bytes{};
  SecretDigest() = default;
  SecretDigest(const SecretDigest&) = delete;
  SecretDigest& operator=(const SecretDigest&) = delete;
  ~SecretDigest() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

bool sha256(std::string_view data, Digest& out) {
  unsigned int size = 0;
  return EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr) == 1 && size == out.size();
}

bool hmac_sha256(const unsigned char* key, std::size_t key_size, std::string_view data, Digest& out) {
  unsigned int size = 0;
  return HMAC(EVP_sha256(), key, static_cast<int>(key_size), reinterpret_cast<const unsigned char*>(data.data()),
              data.size(), out.data(), &size) != nullptr &&
         size == out.size();
}

std::string hex(const Digest& digest) {
  std::string out;
  out.reserve(2 * digest.size());
  for (const unsigned char byte : digest) {
    out.push_back(kHexDigits[byte >> 4]);
    out.push_back(kHexDigits[byte & 0xF]);
  }
  return out;
}

constexpr bool is_unreserved(char c) noexcept { return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~'; }

void append_uri_encoded(std::string& out, std::string_view text, bool keep_slash) {
  for (const char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kUpperHexDigits[byte >> 4]);
      out.push_back(kUpperHexDigits[byte & 0xF]);
    }
  }
}

int hex_value(char c) noexcept {
  if (is_digit(c)) return c - '0';
  const char lower = ascii_lower(c);
  return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

// A '%' not followed by two hex digits stays a '%' (and is then signed as %25).
std::string percent_decoded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

// RFC 3986 remove_dot_segments, also dropping empty segments ("//"), as
// botocore does for every service but S3.
std::string normalized_path(std::string_view path) {
  std::vector<std::string_view> segments;
  std::string_view rest = path;
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      continue;
    }
    segments.push_back(segment);
  }
  std::string out = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  if (!segments.empty() && path.back() == '/') out.push_back('/');
  return out;
}

// Trimmed, with each inner run of whitespace made one space.
std::string trimmed_header_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool in_space = false;
  for (const char c : trim(value)) {
    if (is_space(c)) {
      in_space = true;
      continue;
    }
    if (in_space) out.push_back(' ');
    in_space = false;
    out.push_back(c);
  }
  return out;
}

bool is_control(char c) noexcept { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }

bool is_valid_header_name(std::string_view name) noexcept {
  return !name.empty() &&
         std::none_of(name.begin(), name.end(), [](char c) { return c == ':' || c == ' ' || is_control(c); });
}

// Names sign_v4 sets itself; the caller's own would sign one value and send another.
bool is_reserved_header(std::string_view lower_name) noexcept {
  return lower_name == "host" || lower_name == "authorization" || lower_name == "x-amz-date" ||
         lower_name == "x-amz-security-token" || lower_name == "x-amz-content-sha256";
}

bool is_scope_part(std::string_view part) noexcept {
  return !part.empty() && std::all_of(part.begin(), part.end(),
                                      [](char c) { return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-'; });
}

struct CanonicalHeader {
  std::string name;
  std::string value;
};

// Everything that can be refused, before any secret is touched.
std::optional<Error> check_inputs(const SignableRequest& request, const AwsCredentials& credentials,
                                  std::string_view region, std::string_view service, absl::Time now) {
  // Access key ids are upper-case letters and digits; anything else would break the Credential field.
  if (credentials.access_key_id.empty() ||
      !std::all_of(credentials.access_key_id.begin(), credentials.access_key_id.end(), is_alnum)) {
    return make_error(ErrorCategory::kAuth, "AWS access key id is empty or malformed");
  }
  if (credentials.secret_access_key.empty()) {
    return make_error(ErrorCategory::kAuth, "AWS secret access key is empty");
  }
  if (std::any_of(credentials.session_token.begin(), credentials.session_token.end(), is_control)) {
    return make_error(ErrorCategory::kAuth, "AWS session token is malformed");
  }
  if (request.host.empty()) return make_error(ErrorCategory::kBadRequest, "SigV4: the request has no host");
  if (!is_scope_part(region) || !is_scope_part(service)) {
    return make_error(ErrorCategory::kBadRequest, "SigV4: region and service must be non-empty [a-z0-9-]");
  }
  // absl formats the infinite times as words, and years past 9999 with more digits.
  const std::int64_t year = absl::ToCivilSecond(now, absl::UTCTimeZone()).year();
  if (now == absl::InfiniteFuture() || now == absl::InfinitePast() || year < 0 || year > 9999) {
    return make_error(ErrorCategory::kBadRequest, "SigV4: the signing time is out of range");
  }
  for (const auto& [name, value] : request.headers) {
    if (!is_valid_header_name(name)) {
      return make_error(ErrorCategory::kBadRequest, "SigV4: a header name is empty or has invalid characters");
    }
    const std::string lower = to_lower(name);
    if (is_reserved_header(lower)) {
      return make_error(ErrorCategory::kBadRequest, "SigV4: header " + lower + " is set by the signer");
    }
  }
  return std::nullopt;
}

Error crypto_error() { return make_error(ErrorCategory::kUnknown, "SigV4: OpenSSL failed to hash"); }

}  // namespace

std::string uri_encoded(std::string_view text) {
  std::string out;
  append_uri_encoded(out, text, false);
  return out;
}

namespace detail {

std::string canonical_uri(std::string_view wire_path) {
  std::string out;
  append_uri_encoded(out, normalized_path(wire_path), /*keep_slash=*/true);
  return out;
}

std::string canonical_query_string(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    const std::size_t eq = piece.find('=');
    std::pair<std::string, std::string> pair;
    append_uri_encoded(pair.first, percent_decoded(piece.substr(0, eq)), /*keep_slash=*/false);
    if (eq != std::string_view::npos) {
      append_uri_encoded(pair.second, percent_decoded(piece.substr(eq + 1)), /*keep_slash=*/false);
    }
    pairs.push_back(std::move(pair));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

Result<SigningSteps> sign_steps(const SignableRequest& request, const AwsCredentials& credentials,
                                std::string_view region, std::string_view service, absl::Time now,
                                PayloadHashHeader payload_hash_header) {
  if (auto refused = check_inputs(request, credentials, region, service, now)) return *std::move(refused);

  SigningSteps steps;
  steps.amz_date = absl::FormatTime("%Y%m%dT%H%M%SZ", now, absl::UTCTimeZone());
  const std::string_view date = std::string_view(steps.amz_date).substr(0, 8);
  std::string scope;
  scope.append(date).append("/").append(region).append("/").append(service).append("/aws4_request");

  Digest digest;
  if (!sha256(request.body, digest)) return crypto_error();
  const std::string payload_hash = hex(digest);

  std::vector<CanonicalHeader> headers;
  headers.reserve(request.headers.size() + 4);
  for (const auto& [name, value] : request.headers) headers.push_back({to_lower(name), trimmed_header_value(value)});
  headers.push_back({"host", trimmed_header_value(request.host)});
  headers.push_back({"x-amz-date", steps.amz_date});
  if (!credentials.session_token.empty()) {
    headers.push_back({"x-amz-security-token", trimmed_header_value(credentials.session_token)});
  }
  if (payload_hash_header == PayloadHashHeader::kSend) headers.push_back({"x-amz-content-sha256", payload_hash});
  // Stable: the values of a repeated header are joined in the order they are sent.
  std::stable_sort(headers.begin(), headers.end(),
                   [](const CanonicalHeader& a, const CanonicalHeader& b) { return a.name < b.name; });

  std::string canonical_headers;
  std::string signed_headers;
  for (std::size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].name == headers[i - 1].name) {
      canonical_headers.back() = ',';  // was the previous value's '\n'
    } else {
      canonical_headers.append(headers[i].name).append(":");
      if (!signed_headers.empty()) signed_headers.push_back(';');
      signed_headers.append(headers[i].name);
    }
    canonical_headers.append(headers[i].value).append("\n");
  }

  std::string& canonical = steps.canonical_request;
  canonical.append(request.method).append("\n");
  canonical.append(canonical_uri(request.path)).append("\n");
  canonical.append(canonical_query_string(request.query)).append("\n");
  canonical.append(canonical_headers).append("\n");
  canonical.append(signed_headers).append("\n");
  canonical.append(payload_hash);

  if (!sha256(canonical, digest)) return crypto_error();
  steps.string_to_sign.append(kAlgorithm).append("\n");
  steps.string_to_sign.append(steps.amz_date).append("\n");
  steps.string_to_sign.append(scope).append("\n");
  steps.string_to_sign.append(hex(digest));

  // kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
  Digest signature;
  {
    std::string first_key;
    first_key.reserve(4 + credentials.secret_access_key.size());  // no reallocation leaves a copy behind
    first_key.append("AWS4").append(credentials.secret_access_key);
    SecretDigest date_key, region_key, service_key, signing_key;
    const bool hashed =
        hmac_sha256(reinterpret_cast<const unsigned char*>(first_key.data()), first_key.size(), date, date_key.bytes) &&
        hmac_sha256(date_key.bytes.data(), date_key.bytes.size(), region, region_key.bytes) &&
        hmac_sha256(region_key.bytes.data(), region_key.bytes.size(), service, service_key.bytes) &&
        hmac_sha256(service_key.bytes.data(), service_key.bytes.size(), "aws4_request", signing_key.bytes) &&
        hmac_sha256(signing_key.bytes.data(), signing_key.bytes.size(), steps.string_to_sign, signature);
    OPENSSL_cleanse(first_key.data(), first_key.size());
    if (!hashed) return crypto_error();
  }

  steps.authorization.append(kAlgorithm)
      .append(" Credential=")
      .append(credentials.access_key_id)
      .append("/")
      .append(scope)
      .append(", SignedHeaders=")
      .append(signed_headers)
      .append(", Signature=")
      .append(hex(signature));
  return steps;
}

}  // namespace detail

Result<AddedHeaders> sign_v4(const SignableRequest& request, const AwsCredentials& credentials, std::string_view region,
                             std::string_view service, absl::Time now, PayloadHashHeader payload_hash_header) {
  auto steps = detail::sign_steps(request, credentials, region, service, now, payload_hash_header);
  if (!steps.ok()) return std::move(steps).error();
  AddedHeaders added;
  added.emplace_back("authorization", std::move(steps->authorization));
  added.emplace_back("x-amz-date", std::move(steps->amz_date));
  if (!credentials.session_token.empty()) added.emplace_back("x-amz-security-token", credentials.session_token);
  if (payload_hash_header == PayloadHashHeader::kSend) {
    // The canonical request's last line.
    const std::string& canonical = steps->canonical_request;
    added.emplace_back("x-amz-content-sha256", canonical.substr(canonical.rfind('\n') + 1));
  }
  return added;
}

}  // namespace llmguard::internal::aws
