// AWS Signature Version 4 against AWS's published test suite (tests/data/sigv4,
// see its README.md) and against botocore's own signatures of Bedrock calls.
#include "providers/sigv4.h"

#include <absl/time/time.h>
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "text.h"

namespace llmguard::internal::aws {
namespace {

constexpr std::string_view kAccessKeyId = "AKIDEXAMPLE";
constexpr std::string_view kSecretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

absl::Time suite_time() { return absl::FromCivil(absl::CivilSecond(2015, 8, 30, 12, 36, 0), absl::UTCTimeZone()); }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A vector's .req file parsed, plus what the signer is expected to produce.
struct Vector {
  std::string method, target, host, amz_date, body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string session_token;
  std::string canonical_request, string_to_sign, authorization;

  SignableRequest request() const {
    SignableRequest r;
    r.method = method;
    r.host = host;
    const std::string_view t = target;
    const std::size_t question = t.find('?');
    r.path = t.substr(0, question);
    if (question != std::string_view::npos) r.query = t.substr(question + 1);
    for (const auto& [name, value] : headers) r.headers.emplace_back(name, value);
    r.body = body;
    return r;
  }
  AwsCredentials credentials() const {
    return {std::string(kAccessKeyId), std::string(kSecretAccessKey), session_token};
  }
};

// The request line's target may hold spaces (get-space): the method ends at
// the first space, the version starts at the last. A header line starting
// with whitespace continues the one before (obs-fold, unfolded to a space).
Vector load_vector(const std::string& name) {
  const std::string dir = std::string(LLMGUARD_TEST_DATA_DIR) + "/sigv4/" + name + "/" + name;
  Vector v;
  v.canonical_request = read_text(dir + ".creq");
  v.string_to_sign = read_text(dir + ".sts");
  v.authorization = read_text(dir + ".authz");

  const std::string raw = read_text(dir + ".req");
  std::size_t at = 0;
  auto next_line = [&]() -> std::string_view {
    const std::size_t eol = raw.find('\n', at);
    const std::string_view line = std::string_view(raw).substr(at, eol - at);
    at = eol == std::string::npos ? raw.size() : eol + 1;
    return line;
  };
  const std::string_view request_line = next_line();
  v.method = request_line.substr(0, request_line.find(' '));
  v.target = request_line.substr(v.method.size() + 1, request_line.rfind(' ') - v.method.size() - 1);
  while (at < raw.size()) {
    const std::string_view line = next_line();
    if (line.empty()) break;
    if (is_space(line[0])) {
      REQUIRE(!v.headers.empty());
      v.headers.back().second.append(" ").append(trim(line));
      continue;
    }
    const std::size_t colon = line.find(':');
    REQUIRE(colon != std::string_view::npos);
    v.headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  v.body = raw.substr(at);

  // The signer adds these itself: the vector's values become expectations and credentials.
  std::erase_if(v.headers, [&](const auto& header) {
    const std::string lower = to_lower(header.first);
    if (lower == "host") v.host = header.second;
    if (lower == "x-amz-date") v.amz_date = header.second;
    return lower == "host" || lower == "x-amz-date" || lower == "x-amz-security-token";
  });
  // As botocore's runner does: the token is the one the canonical request signs
  // (get-vanilla-with-session-token's .req leaves it out).
  const std::string token_line = "\nx-amz-security-token:";
  if (const std::size_t token_at = v.canonical_request.find(token_line); token_at != std::string::npos) {
    const std::size_t start = token_at + token_line.size();
    v.session_token = v.canonical_request.substr(start, v.canonical_request.find('\n', start) - start);
  }
  return v;
}

TEST_CASE("Every vector of AWS's SigV4 test suite, and botocore's Bedrock signatures, sign byte for byte") {
  // Every vector of the suite as botocore bundles it. post-sts-header-after is
  // the suite's "token added after signing" case: its expected output is
  // signing without a token, which is what this signer does without one (it
  // always signs a token it has, as botocore does).
  const std::vector<std::string> names = {
      "get-header-key-duplicate",
      "get-header-value-multiline",
      "get-header-value-order",
      "get-header-value-trim",
      "get-relative",
      "get-relative-relative",
      "get-slash",
      "get-slash-dot-slash",
      "get-slash-pointless-dot",
      "get-slashes",
      "get-space",
      "get-special-character",
      "get-unreserved",
      "get-utf8",
      "get-vanilla",
      "get-vanilla-empty-query-key",
      "get-vanilla-query",
      "get-vanilla-query-order-encoded",
      "get-vanilla-query-order-key",
      "get-vanilla-query-order-key-case",
      "get-vanilla-query-order-value",
      "get-vanilla-query-unreserved",
      "get-vanilla-utf8-query",
      "get-vanilla-with-session-token",
      "post-header-key-case",
      "post-header-key-sort",
      "post-header-value-case",
      "post-sts-header-after",
      "post-sts-header-before",
      "post-vanilla",
      "post-vanilla-empty-query-value",
      "post-vanilla-query",
      "post-x-www-form-urlencoded",
      "post-x-www-form-urlencoded-parameters",
      "bedrock-converse",
      "bedrock-converse-stream-arn-token",
  };
  for (const std::string& name : names) {
    CAPTURE(name);
    const Vector v = load_vector(name);
    const std::string_view service = name.starts_with("bedrock-") ? "bedrock" : "service";
    const auto steps = detail::sign_steps(v.request(), v.credentials(), "us-east-1", service, suite_time());
    REQUIRE(steps.ok());
    CHECK(steps->amz_date == v.amz_date);
    CHECK(steps->canonical_request == v.canonical_request);
    CHECK(steps->string_to_sign == v.string_to_sign);
    CHECK(steps->authorization == v.authorization);

    const auto added = sign_v4(v.request(), v.credentials(), "us-east-1", service, suite_time());
    REQUIRE(added.ok());
    REQUIRE(added->size() >= 2);
    CHECK((*added)[0] == std::pair<std::string, std::string>("authorization", v.authorization));
    CHECK((*added)[1] == std::pair<std::string, std::string>("x-amz-date", v.amz_date));
  }
}

TEST_CASE("A Bedrock model id sent percent-encoded is signed encoded twice") {
  // botocore sends the model id's ':' as %3A (bedrock-converse.req) and signs
  // the path with that '%' encoded again.
  CHECK(detail::canonical_uri("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse") ==
        "/model/anthropic.claude-3-5-haiku-20241022-v1%253A0/converse");
  CHECK(detail::canonical_uri("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus."
                              "anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream") ==
        "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fus."
        "anthropic.claude-3-5-haiku-20241022-v1%253A0/converse-stream");
}

TEST_CASE("The canonical URI keeps unreserved bytes and '/', encodes the rest in upper-case hex, and is normalised") {
  CHECK(detail::canonical_uri("") == "/");
  CHECK(detail::canonical_uri("/") == "/");
  CHECK(detail::canonical_uri("/a-b_c.d~e/F0") == "/a-b_c.d~e/F0");
  CHECK(detail::canonical_uri("/a b/\xE1\x88\xB4/$!*'()+,;=@") == "/a%20b/%E1%88%B4/%24%21%2A%27%28%29%2B%2C%3B%3D%40");
  CHECK(detail::canonical_uri("//a//b/") == "/a/b/");
  CHECK(detail::canonical_uri("/a/./b/../c") == "/a/c");
  CHECK(detail::canonical_uri("/../..") == "/");
  // Encoded dots are not dot segments: the path is normalised as sent.
  CHECK(detail::canonical_uri("/a/%2E%2E/b") == "/a/%252E%252E/b");
}

TEST_CASE("The canonical query string is the same whether the query was sent encoded or not") {
  CHECK(detail::canonical_query_string("") == "");
  CHECK(detail::canonical_query_string("b=2&a=1") == "a=1&b=2");
  CHECK(detail::canonical_query_string("%e1%88%b4=x") == "%E1%88%B4=x");
  CHECK(detail::canonical_query_string("\xE1\x88\xB4=x") == "%E1%88%B4=x");
  CHECK(detail::canonical_query_string("k=a%20b") == detail::canonical_query_string("k=a b"));
  CHECK(detail::canonical_query_string("k=a%2Fb") == "k=a%2Fb");
  CHECK(detail::canonical_query_string("k=a/b") == "k=a%2Fb");
  // '+' is a literal plus, not a space.
  CHECK(detail::canonical_query_string("k=a+b") == "k=a%2Bb");
  // A name alone has an empty value; empty pieces are dropped; a stray '%' is a '%'.
  CHECK(detail::canonical_query_string("flag&&k=1&") == "flag=&k=1");
  CHECK(detail::canonical_query_string("k=100%&j=%zz") == "j=%25zz&k=100%25");
  // Sorted bytewise by the encoded name, then value: upper case before lower.
  CHECK(detail::canonical_query_string("a=2&%41=1&a=1&=0") == "=0&A=1&a=1&a=2");
}

SignableRequest bedrock_request() {
  SignableRequest request;
  request.method = "POST";
  request.host = "bedrock-runtime.us-east-1.amazonaws.com";
  request.path = "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse";
  request.headers = {{"Content-Type", "application/json"}};
  request.body = R"({"messages":[{"role":"user","content":[{"text":"Hi"}]}]})";
  return request;
}

AwsCredentials example_credentials(std::string token = "") {
  return {std::string(kAccessKeyId), std::string(kSecretAccessKey), std::move(token)};
}

std::vector<std::string> names_of(const AddedHeaders& headers) {
  std::vector<std::string> names;
  for (const auto& [name, value] : headers) names.push_back(name);
  return names;
}

TEST_CASE("sign_v4 adds authorization and x-amz-date, the session token, and the payload hash when asked") {
  const auto plain = sign_v4(bedrock_request(), example_credentials(), "us-east-1", "bedrock", suite_time());
  REQUIRE(plain.ok());
  CHECK(names_of(*plain) == std::vector<std::string>{"authorization", "x-amz-date"});
  CHECK((*plain)[1].second == "20150830T123600Z");

  const auto with_token = sign_v4(bedrock_request(), example_credentials("session-token-value"), "us-east-1", "bedrock",
                                  suite_time(), PayloadHashHeader::kSend);
  REQUIRE(with_token.ok());
  CHECK(names_of(*with_token) ==
        std::vector<std::string>{"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"});
  CHECK((*with_token)[2].second == "session-token-value");
  {
    // The hash sent is the canonical request's last line, and is signed.
    const auto steps = detail::sign_steps(bedrock_request(), example_credentials("session-token-value"), "us-east-1",
                                          "bedrock", suite_time(), PayloadHashHeader::kSend);
    REQUIRE(steps.ok());
    CHECK(steps->canonical_request.ends_with("\n" + (*with_token)[3].second));
    CHECK(steps->canonical_request.find("\nx-amz-content-sha256:" + (*with_token)[3].second + "\n") !=
          std::string::npos);
    CHECK(steps->authorization.find("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;"
                                    "x-amz-security-token,") != std::string::npos);
  }
  CHECK((*with_token)[0].second != (*plain)[0].second);
}

TEST_CASE("The signature changes with the body, the time, the region and the secret") {
  const auto base = detail::sign_steps(bedrock_request(), example_credentials(), "us-east-1", "bedrock", suite_time());
  REQUIRE(base.ok());
  SignableRequest other_body = bedrock_request();
  other_body.body = "{}";
  AwsCredentials other_secret = example_credentials();
  other_secret.secret_access_key.back() = 'X';
  const std::vector<Result<detail::SigningSteps>> variants = {
      detail::sign_steps(other_body, example_credentials(), "us-east-1", "bedrock", suite_time()),
      detail::sign_steps(bedrock_request(), example_credentials(), "us-east-1", "bedrock",
                         suite_time() + absl::Seconds(1)),
      detail::sign_steps(bedrock_request(), example_credentials(), "us-west-2", "bedrock", suite_time()),
      detail::sign_steps(bedrock_request(), other_secret, "us-east-1", "bedrock", suite_time()),
  };
  for (const auto& variant : variants) {
    REQUIRE(variant.ok());
    CHECK(variant->authorization != base->authorization);
  }
  // Same inputs, same signature.
  const auto again = detail::sign_steps(bedrock_request(), example_credentials(), "us-east-1", "bedrock", suite_time());
  REQUIRE(again.ok());
  CHECK(again->authorization == base->authorization);
}

TEST_CASE("Unsignable inputs are refused with errors that name no credential") {
  const std::string secret(kSecretAccessKey);
  const std::string token = "token-value-that-is-secret";
  auto refusal = [&](const SignableRequest& request, const AwsCredentials& credentials, std::string_view region,
                     std::string_view service, absl::Time now) {
    const auto result = sign_v4(request, credentials, region, service, now);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().message.find(secret) == std::string::npos);
    CHECK(result.error().message.find(token) == std::string::npos);
    CHECK(result.error().message.find(kAccessKeyId) == std::string::npos);
    return result.error().category;
  };
  const SignableRequest request = bedrock_request();
  const absl::Time now = suite_time();

  AwsCredentials no_key = example_credentials(token);
  no_key.access_key_id.clear();
  CHECK(refusal(request, no_key, "us-east-1", "bedrock", now) == ErrorCategory::kAuth);
  AwsCredentials bad_key = example_credentials(token);
  bad_key.access_key_id = "AKID/EXAMPLE";
  CHECK(refusal(request, bad_key, "us-east-1", "bedrock", now) == ErrorCategory::kAuth);
  AwsCredentials no_secret = example_credentials(token);
  no_secret.secret_access_key.clear();
  CHECK(refusal(request, no_secret, "us-east-1", "bedrock", now) == ErrorCategory::kAuth);
  CHECK(refusal(request, example_credentials(token + "\r\nx-evil: 1"), "us-east-1", "bedrock", now) ==
        ErrorCategory::kAuth);

  const AwsCredentials good = example_credentials(token);
  CHECK(refusal(request, good, "", "bedrock", now) == ErrorCategory::kBadRequest);
  CHECK(refusal(request, good, "us-east-1/x", "bedrock", now) == ErrorCategory::kBadRequest);
  CHECK(refusal(request, good, "us-east-1", "Bedrock", now) == ErrorCategory::kBadRequest);
  CHECK(refusal(request, good, "us-east-1", "bedrock", absl::InfiniteFuture()) == ErrorCategory::kBadRequest);
  CHECK(refusal(request, good, "us-east-1", "bedrock",
                absl::FromCivil(absl::CivilSecond(10000, 1, 1, 0, 0, 0), absl::UTCTimeZone())) ==
        ErrorCategory::kBadRequest);
  SignableRequest no_host = request;
  no_host.host = "";
  CHECK(refusal(no_host, good, "us-east-1", "bedrock", now) == ErrorCategory::kBadRequest);
  for (std::string_view name : {"Host", "authorization", "X-Amz-Date", "x-amz-security-token", "X-Amz-Content-Sha256",
                                "", "bad name", "bad:name", "bad\nname"}) {
    CAPTURE(name);
    SignableRequest with_header = request;
    with_header.headers.emplace_back(name, "v");
    CHECK(refusal(with_header, good, "us-east-1", "bedrock", now) == ErrorCategory::kBadRequest);
  }
}

}  // namespace
}  // namespace llmguard::internal::aws
