// AWS Signature Version 4 for requests to non-S3 services (Bedrock), signed
// in the Authorization header the way botocore's SigV4Auth signs them.
//
//   aws::SignableRequest request{.method = "POST", .host = host, .path = "/model/m%3A0/converse",
//                                .headers = {{"content-type", "application/json"}}, .body = body};
//   // "bedrock" is the signing name, though the host is bedrock-runtime.
//   auto added = aws::sign_v4(request, credentials, "us-east-1", "bedrock", absl::FromChrono(clock.wall_now()));
//   if (!added.ok()) return added.error();
//   for (auto& [name, value] : *added) headers.emplace_back(name, value);
//
// How the canonical request is built (what the published test suite and
// botocore agree on):
//  - URI: the wire path with dot segments and repeated slashes removed, then
//    percent-encoded once more, every byte but A-Z a-z 0-9 - _ . ~ and '/'.
//    The path on the wire is already encoded, so "%3A" is signed as "%253A":
//    non-S3 services check the signature against the doubly encoded path.
//  - Query: split on '&' (empty pieces dropped), each at its first '=';
//    names and values percent-decoded, then encoded as above with '/'
//    encoded too, so a query sent encoded or not signs the same; sorted by
//    name, then value. '+' is taken literally (signed as %2B), not as a space.
//    (botocore sends its query already encoded this way and signs the pieces
//    as sent, sorted, which comes to the same; AWS's C signer, aws-c-auth,
//    decodes and re-encodes as here.)
//  - Headers: names lower-cased, values trimmed with inner runs of
//    whitespace made one space, repeated names joined with ',' in order,
//    sorted by name; host and x-amz-date (and the token) always signed.
//  - Payload: the hex SHA-256 of the body.
// Not for S3, which signs the path as sent and without normalising it.
#ifndef LLMGUARD_SRC_PROVIDERS_SIGV4_H_
#define LLMGUARD_SRC_PROVIDERS_SIGV4_H_

#include <absl/time/time.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmguard/error.h"

namespace llmguard::internal::aws {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials' token; "" for long-term keys
};

struct SignableRequest {
  std::string_view method;  // "POST"
  // As in the Host header: "bedrock-runtime.us-east-1.amazonaws.com", with ":port" if not the scheme's default.
  std::string_view host;
  std::string_view path;   // exactly as sent, i.e. already percent-encoded once; "" is "/"
  std::string_view query;  // as sent, without '?'; may be empty
  // Headers to sign besides host and the ones sign_v4 adds (which must not
  // be among them); e.g. content-type. Names in any case.
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view body;
};

// Whether to send the payload's hash as x-amz-content-sha256 (S3 requires
// it; Bedrock does not).
enum class PayloadHashHeader : std::uint8_t { kOmit, kSend };

using AddedHeaders = std::vector<std::pair<std::string, std::string>>;

// The headers to add to the request, names lower-case: authorization,
// x-amz-date, x-amz-security-token when the credentials have a session
// token (it is signed too), and x-amz-content-sha256 if asked for.
// Errors: kAuth for an empty or malformed access key id or secret, or a
// session token with control characters; kBadRequest for an empty host, a
// region or service outside [a-z0-9-], a time outside years 0-9999, a header
// name that is empty, has whitespace, ':' or control characters, or is one of
// the added ones, host or authorization. No message contains a credential.
Result<AddedHeaders> sign_v4(const SignableRequest& request, const AwsCredentials& credentials, std::string_view region,
                             std::string_view service, absl::Time now,
                             PayloadHashHeader payload_hash_header = PayloadHashHeader::kOmit);

// `text` percent-encoded as one path segment: every byte but A-Z a-z 0-9
// - _ . ~ becomes %XX (upper-case hex), '/' and ':' included. For model ids
// and ARNs in Bedrock's paths.
std::string uri_encoded(std::string_view text);

// The signing steps, exposed for tests against published vectors.
namespace detail {

std::string canonical_uri(std::string_view wire_path);
std::string canonical_query_string(std::string_view query);

struct SigningSteps {
  std::string amz_date;           // "20150830T123600Z"
  std::string canonical_request;  // holds the session token, if any
  std::string string_to_sign;
  std::string authorization;
};

// What sign_v4 computes, with the same checks.
Result<SigningSteps> sign_steps(const SignableRequest& request, const AwsCredentials& credentials,
                                std::string_view region, std::string_view service, absl::Time now,
                                PayloadHashHeader payload_hash_header = PayloadHashHeader::kOmit);

}  // namespace detail
}  // namespace llmguard::internal::aws

#endif  // LLMGUARD_SRC_PROVIDERS_SIGV4_H_
