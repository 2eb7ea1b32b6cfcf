#include "classify.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "user_rules.h"

namespace llmguard::internal {
namespace {

using std::chrono::milliseconds;

const auto kNow = std::chrono::sys_days{std::chrono::year{2025} / 3 / 4} + std::chrono::hours(10) +
                  std::chrono::minutes(40) + std::chrono::seconds(12);

TEST_CASE("Status alone decides when the body says nothing") {
  CHECK(classify_response(401, {}, "").category == ErrorCategory::kAuth);
  CHECK(classify_response(403, {}, "").category == ErrorCategory::kPermission);
  CHECK(classify_response(404, {}, "").category == ErrorCategory::kModelNotFound);
  CHECK(classify_response(429, {}, "").category == ErrorCategory::kRateLimit);
  CHECK(classify_response(400, {}, "").category == ErrorCategory::kBadRequest);
  CHECK(classify_response(500, {}, "").category == ErrorCategory::kTransient);
  CHECK(classify_response(529, {}, "").category == ErrorCategory::kTransient);
  CHECK(classify_response(408, {}, "").category == ErrorCategory::kTransient);
  CHECK(classify_response(418, {}, "").category == ErrorCategory::kUnknown);
}

// Regional APIs answer with their own code tables, often at HTTP 200 and with
// terse or Chinese messages: the documented meaning of the code decides.
TEST_CASE("Documented codes of regional APIs decide where their messages say little") {
  struct Case {
    int status;
    const char* body;
    ErrorCategory expected;
  };
  const Case cases[] = {
      // iFlytek Spark, the header of a chat reply (xfyun.cn Spark API error codes)
      {200, R"({"header":{"code":10013,"message":"input content audit failed","sid":"cht000b1234@dx1"}})",
       ErrorCategory::kContentFilter},
      {200, R"({"header":{"code":10907,"message":"Request failed","sid":"cht000b1235@dx1"}})",
       ErrorCategory::kContextOverflow},
      {200, R"({"header":{"code":11202,"message":"licc failed","sid":"cht000b1236@dx1"}})", ErrorCategory::kRateLimit},
      {200, R"({"header":{"code":11201,"message":"licc failed","sid":"cht000b1237@dx1"}})",
       ErrorCategory::kQuotaExhausted},
      {200, R"({"header":{"code":11200,"message":"licc failed","sid":"cht000b1238@dx1"}})", ErrorCategory::kPermission},
      // Tencent Cloud API 3.0 (hunyuan/v20230901/errorcodes.py)
      {200,
       R"({"Response":{"Error":{"Code":"ResourceUnavailable.LowBalance","Message":"资源不可用"},"RequestId":"r1"}})",
       ErrorCategory::kQuotaExhausted},
      {200,
       R"({"Response":{"Error":{"Code":"FailedOperation.EngineServerLimitExceeded","Message":"引擎层内部错误"},"RequestId":"r2"}})",
       ErrorCategory::kRateLimit},
      {200,
       R"({"Response":{"Error":{"Code":"OperationDenied.TextIllegalDetected","Message":"文本包含违法违规信息"},"RequestId":"r3"}})",
       ErrorCategory::kContentFilter},
      {200, R"({"Response":{"Error":{"Code":"InvalidParameterValue.Model","Message":"模型不合法"},"RequestId":"r4"}})",
       ErrorCategory::kModelNotFound},
      {200,
       R"({"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"r5"}})",
       ErrorCategory::kAuth},
      // MiniMax base_resp (platform.minimax.io error codes)
      {200, R"({"id":"","base_resp":{"status_code":1008,"status_msg":"balance"}})", ErrorCategory::kQuotaExhausted},
      {200, R"({"id":"","base_resp":{"status_code":1026,"status_msg":"input new_sensitive"}})",
       ErrorCategory::kContentFilter},
      {200, R"({"id":"","base_resp":{"status_code":2049,"status_msg":"request failed"}})", ErrorCategory::kAuth},
      // Baidu Qianfan / ERNIE: error_code 110 is an invalid token, not an HTTP status
      {200, R"({"error_code":110,"error_msg":"Access token invalid or no longer valid"})", ErrorCategory::kAuth},
      {200, R"({"error_code":17,"error_msg":"Open api request limit reached"})", ErrorCategory::kQuotaExhausted},
      {200, R"({"error_code":336103,"error_msg":"the sum of prompt tokens and max_output_tokens is too large"})",
       ErrorCategory::kContextOverflow},
      // Zhipu (docs.bigmodel.cn API error codes)
      {400, R"({"error":{"code":"1261","message":"Prompt 超长"}})", ErrorCategory::kContextOverflow},
      {429, R"({"error":{"code":"1113","message":"请求失败"}})", ErrorCategory::kQuotaExhausted},
      {400, R"({"error":{"code":"1211","message":"请求失败"}})", ErrorCategory::kModelNotFound},
      {429, R"({"error":{"code":"1302","message":"您当前使用该API的并发数过高"}})", ErrorCategory::kRateLimit},
      // Volcengine Ark: an account in arrears
      {403,
       R"({"error":{"code":"AccountOverdueError","message":"The request failed because your account has an overdue balance.","type":"Forbidden"}})",
       ErrorCategory::kQuotaExhausted},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    CHECK(classify_response(c.status, {}, c.body).category == c.expected);
  }
  // A code another table holds means nothing in this one: Spark's 10013 under
  // MiniMax's envelope is left to the message.
  CHECK(classify_response(200, {}, R"({"base_resp":{"status_code":10013,"status_msg":"failed"}})").category !=
        ErrorCategory::kContentFilter);
}

TEST_CASE("Bedrock: exceptions of a model or service that may answer next time are transient at any status") {
  struct Case {
    int status;
    const char* type;
    const char* message;
  };
  const Case cases[] = {
      {429, "ModelNotReadyException:http://internal.amazon.com/coral/com.amazon.bedrock/",
       "Model is not ready to serve inference requests. Try again later."},
      {424, "ModelErrorException", "The model encountered an error processing your request."},
      {200, "internalServerException", "The system encountered an unexpected error during processing."},
      {200, "modelStreamErrorException", "The model encountered an error while streaming the response."},
  };
  for (const Case& c : cases) {
    CAPTURE(c.status);
    auto e =
        classify_response(c.status, {{"x-amzn-errortype", c.type}}, fmt::format(R"({{"message":"{}"}})", c.message));
    CHECK(e.category == ErrorCategory::kTransient);
    CHECK(e.rule == "transient.aws_exception");
  }
  // A ModelErrorException that names the input's length is still context_overflow.
  CHECK(classify_response(
            424, {{"x-amzn-errortype", "ModelErrorException"}},
            R"({"message":"The model returned the following errors: Input is too long for requested model."})")
            .category == ErrorCategory::kContextOverflow);
}

TEST_CASE("Bedrock: a ThrottlingException for a daily token quota is quota_exhausted, per minute a rate limit") {
  const Headers throttled{
      {"x-amzn-errortype", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}};
  auto daily =
      classify_response(429, throttled, R"({"message":"Too many tokens per day, please wait before trying again."})");
  CHECK(daily.category == ErrorCategory::kQuotaExhausted);
  CHECK(daily.rule == "quota.daily_throttle");
  CHECK(classify_response(429, throttled, R"({"message":"Too many tokens, please wait before trying again."})")
            .category == ErrorCategory::kRateLimit);
}

TEST_CASE("A 429 that is insufficient_quota is quota_exhausted, not rate_limit") {
  auto e = classify_response(
      429, {},
      R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
  CHECK(e.category == ErrorCategory::kQuotaExhausted);
  CHECK(e.provider_code == "insufficient_quota");
  CHECK(e.provider_type == "insufficient_quota");
  CHECK(e.message.starts_with("You exceeded your current quota"));
}

TEST_CASE("A 400 about the context length is context_overflow") {
  auto e = classify_response(
      400, {},
      R"({"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})");
  CHECK(e.category == ErrorCategory::kContextOverflow);
}

TEST_CASE("Anthropic envelope: type and message are read") {
  auto e = classify_response(529, {}, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  CHECK(e.category == ErrorCategory::kTransient);
  CHECK(e.provider_type == "overloaded_error");
  CHECK(e.message == "Overloaded");
}

TEST_CASE("An HTML gateway page is transient with a readable message") {
  auto e = classify_response(502, {{"content-type", "text/html"}},
                             "<html>\r\n<head><title>502 Bad Gateway</title></head></html>");
  CHECK(e.category == ErrorCategory::kTransient);
  CHECK(e.message.find("HTML page") != std::string::npos);
}

TEST_CASE("HTML pages: a 5xx is transient, a 2xx login page is unknown, a 4xx follows its status") {
  const std::string page = "<!doctype html><html><head><title>Sign in</title></head></html>";
  CHECK(classify_response(503, {}, page).category == ErrorCategory::kTransient);
  CHECK(classify_response(200, {}, page).category == ErrorCategory::kUnknown);
  CHECK(classify_response(429, {}, page).category == ErrorCategory::kRateLimit);
  CHECK(classify_response(403, {}, page).category == ErrorCategory::kPermission);
}

TEST_CASE("A proxy's own status and type yield to the upstream error it carries as text") {
  const std::string body =
      R"({"error":{"message":"Error from provider(404): {\"error\":{\"message\":\"model \\\"x\\\" not found\",\"type\":\"api_error\"}}","type":"proxy_error","code":"500"}})";
  auto e = classify_response(500, {}, body);
  CHECK(e.category == ErrorCategory::kModelNotFound);
  CHECK(e.message == R"(model "x" not found)");
}

TEST_CASE("Unwrapping stops at a fixed depth: deeply nested text gives a category, not a crash") {
  std::string message = R"({"error":{"message":"overloaded"}})";
  for (int i = 0; i < 10; ++i) {  // escaping doubles per level: 10 levels is ~40 KB
    std::string escaped;
    for (char c : message) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    message = R"({"error":{"message":")" + escaped + R"("}})";
  }
  auto e = classify_response(502, {}, message);
  CHECK(e.category == ErrorCategory::kTransient);
}

TEST_CASE("Hostile bodies get a category: 10 MB, deep nesting, invalid UTF-8, NUL bytes") {
  // 10 MB of an error message: above the parse cap, read as text.
  std::string huge = R"({"error":{"message":"overloaded )" + std::string(10u << 20, 'x') + R"("}})";
  auto big = classify_exchange(503, {}, huge, false, kNow);
  CHECK(big.category == ErrorCategory::kTransient);
  CHECK(big.message.size() <= 1024);  // a bounded excerpt, not 10 MB copied into the error
  // 10 MB under the cap of JSON: parsed and its message read.
  std::string padded = R"({"error":{"message":"Rate limit reached","pad":")" + std::string(7u << 20, ' ') + R"("}})";
  CHECK(classify_exchange(429, {}, padded, false, kNow).category == ErrorCategory::kRateLimit);
  CHECK(classify_exchange(500, {}, std::string(100000, '['), false, kNow).category == ErrorCategory::kTransient);
  CHECK(classify_exchange(200, {}, std::string(100000, '{'), true, kNow).category == ErrorCategory::kUnknown);
  const std::string invalid_utf8 = "{\"error\":{\"message\":\"bad \xff\xfe\xc0 bytes\"}}";
  CHECK(classify_exchange(400, {}, invalid_utf8, false, kNow).category == ErrorCategory::kBadRequest);
  const std::string with_nul("rate limit\0exceeded", 19);
  CHECK(classify_exchange(429, {}, with_nul, false, kNow).category == ErrorCategory::kRateLimit);
}

TEST_CASE("Delay precedence: retry-after-ms, then retry-after, then x-ratelimit-reset") {
  CHECK(requested_delay({{"retry-after-ms", "250"}, {"retry-after", "3"}}, kNow) == milliseconds(250));
  CHECK(requested_delay({{"retry-after", "3"}, {"x-ratelimit-reset-requests", "6m0s"}}, kNow) == milliseconds(3000));
  CHECK(requested_delay({{"x-ratelimit-reset-requests", "6m0s"}}, kNow) == milliseconds(360000));
  CHECK(requested_delay({{"retry-after", "1.5"}}, kNow) == milliseconds(1500));
  CHECK(requested_delay({{"retry-after", "Tue, 04 Mar 2025 10:40:42 GMT"}}, kNow) == milliseconds(30000));
  CHECK(requested_delay({{"retry-after", "Tue, 04 Mar 2025 10:00:00 GMT"}}, kNow) == milliseconds(0));
  CHECK_FALSE(requested_delay({{"retry-after", "soon"}}, kNow).has_value());
  CHECK_FALSE(requested_delay({{"retry-after", "-5"}}, kNow).has_value());
  CHECK_FALSE(requested_delay({{"retry-after", "nan"}}, kNow).has_value());
  // Found by the fuzzer: absl parses these, and chrono arithmetic on them overflowed.
  CHECK_FALSE(requested_delay({{"retry-after", "infinite-past"}}, kNow).has_value());
  // A delay too long to mean anything is still a delay (above any cap: fall
  // back now), never dropped in favour of ordinary backoff.
  const auto kLong = milliseconds(100LL * 24 * 3600 * 1000);  // longer than any cap
  CHECK(requested_delay(
            {{"anthropic-ratelimit-tokens-remaining", "0"}, {"anthropic-ratelimit-tokens-reset", "infinite-future"}},
            kNow) > kLong);
  CHECK(requested_delay({{"retry-after", "Tue, 04 Mar 2125 10:40:42 GMT"}}, kNow) > kLong);
  CHECK(requested_delay({{"retry-after", "10000000000"}}, kNow) > kLong);
  CHECK(requested_delay({{"retry-after", "99999999999999999999999999"}}, kNow) > kLong);
  CHECK(requested_delay({{"retry-after-ms", "99999999999999999999999999"}}, kNow) > kLong);
  CHECK(requested_delay({}, "Please try again in 99999999999 hours.", kNow) > kLong);
  CHECK_FALSE(requested_delay({}, kNow).has_value());
}

TEST_CASE("Delays written in the body count, after the retry-after headers") {
  CHECK(requested_delay({}, "Please try again in 17.359s. Visit ...", kNow) == milliseconds(17359));
  CHECK(requested_delay({}, "Please try again in 120ms.", kNow) == milliseconds(120));
  CHECK(requested_delay({}, "Please retry after 60 seconds.", kNow) == milliseconds(60000));
  CHECK(requested_delay({}, "try again in 5 minutes", kNow) == milliseconds(300000));
  CHECK(requested_delay({}, "Please try again in 6m0s.", kNow) == milliseconds(360000));
  CHECK(requested_delay({}, R"({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay": "43s"})", kNow) ==
        milliseconds(43000));
  CHECK(requested_delay({{"retry-after", "2"}}, "try again in 20s", kNow) == milliseconds(2000));
  CHECK_FALSE(requested_delay({}, "Please try again later.", kNow).has_value());
}

TEST_CASE("Reset headers count only for a limit that is exhausted") {
  CHECK(requested_delay({{"x-ratelimit-remaining-requests", "0"},
                         {"x-ratelimit-reset-requests", "1s"},
                         {"x-ratelimit-remaining-tokens", "9000"},
                         {"x-ratelimit-reset-tokens", "6m0s"}},
                        "", kNow) == milliseconds(1000));
  CHECK_FALSE(
      requested_delay({{"x-ratelimit-remaining-requests", "499"}, {"x-ratelimit-reset-requests", "120ms"}}, "", kNow)
          .has_value());
  CHECK(requested_delay({{"anthropic-ratelimit-tokens-remaining", "0"},
                         {"anthropic-ratelimit-tokens-reset", "2025-03-04T10:40:42Z"}},
                        "", kNow) == milliseconds(30000));
}

TEST_CASE("Go-style durations from x-ratelimit-reset-*") {
  CHECK(parse_go_duration("1s") == milliseconds(1000));
  CHECK(parse_go_duration("20ms") == milliseconds(20));
  CHECK(parse_go_duration("6m0s") == milliseconds(360000));
  CHECK(parse_go_duration("1h2m3.5s") == milliseconds(3723500));
  CHECK(parse_go_duration("0.5") == milliseconds(500));
  CHECK_FALSE(parse_go_duration("").has_value());
  CHECK_FALSE(parse_go_duration("5 parsecs").has_value());
  CHECK_FALSE(parse_go_duration("ms").has_value());
}

TEST_CASE("x-should-retry is read as the provider's verdict") {
  const std::string body = R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
  CHECK(classify_response(529, {{"x-should-retry", "true"}}, body, kNow).should_retry == true);
  CHECK(classify_response(529, {{"X-Should-Retry", " false "}}, body, kNow).should_retry == false);
  CHECK_FALSE(classify_response(529, {{"x-should-retry", "maybe"}}, body, kNow).should_retry.has_value());
  CHECK_FALSE(classify_response(529, {}, body, kNow).should_retry.has_value());
}

TEST_CASE("Hints point at what to fix: the path, the deployment, the model, the key") {
  auto hint = [](int status, std::string_view body) { return classify_exchange(status, {}, body, false, kNow).hint; };
  const std::string path_hint = "the URL path is wrong";
  CHECK(hint(404, "<html><head><title>404 Not Found</title></head><body>nginx</body></html>").starts_with(path_hint));
  CHECK(hint(404, R"({"status":404,"error":"Not Found","path":"/v4/v1/chat/completions"})").starts_with(path_hint));
  CHECK(hint(404, R"j({"error":{"message":"Invalid URL (POST /v1/chat/completion)","type":"invalid_request_error"}})j")
            .starts_with(path_hint));
  CHECK(
      hint(
          404,
          R"({"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}})")
          .starts_with("check the Azure deployment name"));
  CHECK(hint(404, R"({"error":{"message":"The model `gpt-9` does not exist","code":"model_not_found"}})")
            .starts_with("check the model name"));
  CHECK(hint(401,
             R"({"statusCode":401,"message":"Access denied due to invalid subscription key or wrong API endpoint."})")
            .starts_with("check the api-key header"));
}

TEST_CASE("Secrets are masked wherever they appear in a message") {
  CHECK(redact_secrets("Incorrect API key provided: sk-proj-abcdefghijklmnop1234.") ==
        "Incorrect API key provided: sk-***.");
  CHECK(redact_secrets("auth: Bearer abcdefghijklmnopqrstuvwxyz") == "auth: Bearer ***");
  CHECK(redact_secrets("key AIzaSyA1234567890abcdefghijk rejected") == "key AIza*** rejected");
  CHECK(redact_secrets("scikit uses sk-learn") == "scikit uses sk-learn");  // too short to be a key
  CHECK(redact_secrets("no secrets here") == "no secrets here");
  CHECK(redact_secrets("") == "");
  // At either end, back to back, and each vendor's prefix.
  CHECK(redact_secrets("sk-ant-api03-abcdefghijkl") == "sk-***");
  CHECK(redact_secrets("keys gsk_abcdefghijkl0123 and xai-abcdefghijkl0123") == "keys gsk_*** and xai-***");
  CHECK(redact_secrets("mailgun key-0123456789abcdef;sk_live_0123456789abcdef") == "mailgun key-***;sk_***");
  CHECK(redact_secrets("authorization: BEARER eyJhbGciOiJIUzI1NiJ9") == "authorization: BEARER ***");
  // A prefix inside a longer word is no key.
  CHECK(redact_secrets("task-0123456789abcdef") == "task-0123456789abcdef");
  CHECK(redact_secrets("disk_0123456789abcdef") == "disk_0123456789abcdef");
}

TEST_CASE("Provider messages are redacted at classification") {
  auto e = classify_response(
      401, {},
      R"({"error":{"message":"Incorrect API key provided: sk-live-0123456789abcdef.","code":"invalid_api_key"}})");
  CHECK(e.category == ErrorCategory::kAuth);
  CHECK(e.message.find("0123456789abcdef") == std::string::npos);
}

UserRules compiled(std::vector<ClassifierRule> rules) {
  auto r = UserRules::compile(std::move(rules));
  REQUIRE(r.ok());
  return std::move(*r);
}

TEST_CASE("Classifier rules of the caller's: words match at word starts, in the error's text, ahead of the built-ins") {
  const UserRules rules =
      compiled({{.id = "gw-quota", .category = ErrorCategory::kQuotaExhausted, .status = 429, .words = {"allowance"}}});
  std::string evidence;
  auto own =
      classify_response(429, {}, R"({"error":{"message":"Team ALLOWANCES are spent"}})", kNow, &evidence, &rules);
  CHECK(own.category == ErrorCategory::kQuotaExhausted);
  CHECK(own.rule == "gw-quota");
  CHECK(evidence.find("allowance") != std::string::npos);
  // Only at a word start, only at the rule's status.
  CHECK(classify_response(429, {}, R"({"error":{"message":"disallowance"}})", kNow, nullptr, &rules).category ==
        ErrorCategory::kRateLimit);
  CHECK(classify_response(400, {}, R"({"error":{"message":"allowance"}})", kNow, nullptr, &rules).category ==
        ErrorCategory::kBadRequest);
  // A rule never matches text that is not the error's: other JSON fields are not read.
  CHECK(classify_response(429, {}, R"({"note":"allowance","error":{"message":"slow"}})", kNow, nullptr, &rules).rule !=
        "gw-quota");
}

TEST_CASE("Classifier rules read a JSON pointer's or a header's value, and a delay field") {
  const UserRules rules = compiled({
      {.id = "by-pointer",
       .category = ErrorCategory::kContentFilter,
       .words = {"blocked"},
       .json_pointer = "/result/0/verdict"},
      {.id = "by-header", .category = ErrorCategory::kAuth, .words = {"key expired"}, .header = "X-Gateway-Reason"},
      {.id = "status-only", .category = ErrorCategory::kRateLimit, .status = 509, .delay_field = "/wait"},
  });
  auto pointer = classify_response(200, {}, R"({"result":[{"verdict":"Blocked by policy"}]})", kNow, nullptr, &rules);
  CHECK(pointer.rule == "by-pointer");
  CHECK(pointer.category == ErrorCategory::kContentFilter);
  auto header = classify_response(403, {{"x-gateway-reason", "key-expired"}}, "{}", kNow, nullptr, &rules);
  CHECK(header.rule == "by-header");
  CHECK(header.category == ErrorCategory::kAuth);
  auto delayed = classify_response(509, {}, R"({"wait": 2.5})", kNow, nullptr, &rules);
  CHECK(delayed.rule == "status-only");
  REQUIRE(delayed.retry_after.has_value());
  CHECK(*delayed.retry_after == milliseconds(2500));
  // A header still wins over the rule's delay field; a nonsense delay is none.
  CHECK(*classify_response(509, {{"retry-after", "1"}}, R"({"wait": 9})", kNow, nullptr, &rules).retry_after ==
        milliseconds(1000));
  CHECK_FALSE(classify_response(509, {}, R"({"wait": -3})", kNow, nullptr, &rules).retry_after.has_value());
  CHECK_FALSE(classify_response(509, {}, R"({"wait": "soon"})", kNow, nullptr, &rules).retry_after.has_value());
}

TEST_CASE("Classifier rules that cannot work are refused, naming the rule") {
  struct Case {
    ClassifierRule rule;
    const char* says;
  };
  const Case cases[] = {
      {{.category = ErrorCategory::kAuth, .status = 401}, "needs an id"},
      {{.id = "a", .category = ErrorCategory::kAuth}, "needs a status or words"},
      {{.id = "b", .category = ErrorCategory::kBudgetExceeded, .status = 429}, "category"},
      {{.id = "c", .category = ErrorCategory::kAuth, .status = 42}, "no HTTP status"},
      {{.id = "d", .category = ErrorCategory::kAuth, .words = {"x"}, .json_pointer = "error"}, "RFC 6901"},
      {{.id = "e", .category = ErrorCategory::kAuth, .words = {"x"}, .json_pointer = "/a", .header = "h"}, "not both"},
      {{.id = "f", .category = ErrorCategory::kAuth, .words = {"!!"}}, "no letters or digits"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.says);
    auto r = UserRules::compile({c.rule});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().category == ErrorCategory::kBadRequest);
    CHECK(r.error().message.find(c.says) != std::string::npos);
    if (!c.rule.id.empty()) CHECK(r.error().message.find('"' + c.rule.id + '"') != std::string::npos);
  }
}

TEST_CASE("Every built-in verdict names its rule; evidence is what the rule matched") {
  std::string evidence;
  auto e = classify_response(
      400, {},
      R"({"error":{"message":"This model's maximum context length is 8192 tokens.","code":"context_length_exceeded"}})",
      kNow, &evidence);
  CHECK(e.category == ErrorCategory::kContextOverflow);
  CHECK_FALSE(e.rule.empty());
  CHECK_FALSE(evidence.empty());
  std::string bare;
  auto status_only = classify_response(502, {}, "", kNow, &bare);
  CHECK_FALSE(status_only.rule.empty());
  CHECK(status_only.rule != e.rule);
}

}  // namespace
}  // namespace llmguard::internal
