#include "error_fields.h"

#include <simdjson.h>

#include <array>
#include <cmath>

#include "classify.h"
#include "provider_codes.h"
#include "text.h"

namespace llmguard::internal {
namespace {

using simdjson::dom::element;

constexpr int kMaxUnwrapDepth = 4;
constexpr std::size_t kMaxParsedBody = 8u << 20;

std::string scalar_text(element e) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  std::int64_t i = 0;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return std::to_string(i);
  return {};
}

std::string member_text(element object, std::string_view key) {
  element v;
  if (object[key].get(v) != simdjson::SUCCESS) return {};
  return scalar_text(v);
}

std::optional<element> member(element object, std::string_view key) {
  element v;
  if (!object.is_object() || object[key].get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
  return v;
}

void append_word(std::string& to, std::string_view word) {
  if (word.empty()) return;
  if (!to.empty()) to += ' ';
  to += word;
}

int status_in(std::string_view text) {
  auto n = parse_int(text);
  return n && *n >= 100 && *n <= 599 ? static_cast<int>(*n) : 0;
}

void read_body(std::string_view body, ErrorFields& f, int depth);

// Proxies (LiteLLM, gemini-cli, company gateways) often put the upstream
// error's JSON inside their own message string. When the message holds a
// JSON object that is itself an error, the upstream error decides; the
// proxy's own status and code describe the proxy.
void unwrap_embedded(ErrorFields& f, int depth) {
  if (depth >= kMaxUnwrapDepth) return;
  const std::size_t open = f.message.find('{');
  const std::size_t close = f.message.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close <= open) return;
  ErrorFields inner;
  read_body(std::string_view(f.message).substr(open, close - open + 1), inner, depth + 1);
  if (!inner.found || inner.message.empty()) return;
  inner.safety_block = inner.safety_block || f.safety_block;
  inner.unwrapped = true;
  if (!inner.delay) inner.delay = f.delay;
  f = std::move(inner);
}

// google.rpc.Status details: ErrorInfo.reason ("API_KEY_INVALID") says more
// than the status name; QuotaFailure's quota ids say which window ran out
// ("...PerMinute" vs "...PerDay"); RetryInfo says how long to wait.
void read_google_details(element details, ErrorFields& f) {
  simdjson::dom::array list;
  if (details.get_array().get(list) != simdjson::SUCCESS) return;
  for (element d : list) {
    const std::string reason = member_text(d, "reason");
    if (!reason.empty()) {
      // Google's "code" repeats the HTTP status; the reason is the real code.
      f.code = f.code.empty() || parse_int(f.code) ? reason : f.code + " " + reason;
    }
    simdjson::dom::array violations;
    if (auto v = member(d, "violations"); v && v->get_array().get(violations) == simdjson::SUCCESS) {
      for (element violation : violations) {
        append_word(f.details, member_text(violation, "quotaId"));
        append_word(f.details, member_text(violation, "quotaMetric"));
        append_word(f.details, member_text(violation, "subject"));
      }
    }
    if (!f.delay) {
      if (const std::string delay = member_text(d, "retryDelay"); !delay.empty()) f.delay = parse_go_duration(delay);
    }
  }
}

void read_error_object(element err, ErrorFields& f);

// The members an error object is read by, found in one pass (each keyed
// lookup would rescan them); the first of a duplicated key counts.
struct ErrorMembers {
  std::optional<element> message, detail, type, code, status, status_code, details, metadata, nested, msg;
};

ErrorMembers error_members(simdjson::dom::object fields) {
  ErrorMembers m;
  for (simdjson::dom::key_value_pair kv : fields) {
    const std::string_view key = kv.key;
    auto keep = [&kv](std::optional<element>& slot) {
      if (!slot) slot = kv.value;
    };
    if (key == "message" || key == "Message") keep(m.message);
    else if (key == "detail") keep(m.detail);
    else if (key == "msg" || key == "error_msg" || key == "status_msg" || key == "title") keep(m.msg);
    else if (key == "type") keep(m.type);
    else if (key == "code" || key == "Code" || key == "error_code") keep(m.code);
    else if (key == "status_code") keep(m.status_code);
    else if (key == "status") keep(m.status);  // google.rpc.Status name
    else if (key == "details") keep(m.details);
    else if (key == "metadata") keep(m.metadata);
    else if (key == "error") keep(m.nested);
  }
  return m;
}

void read_error_object(element err, ErrorFields& f) {
  f.found = true;
  simdjson::dom::object fields;
  if (err.get_object().get(fields) != simdjson::SUCCESS) return;
  const ErrorMembers m = error_members(fields);
  auto text_of = [](const std::optional<element>& v) { return v ? scalar_text(*v) : std::string(); };
  f.message = text_of(m.message);
  if (f.message.empty()) f.message = text_of(m.detail);
  if (f.message.empty()) f.message = text_of(m.msg);
  f.type = text_of(m.type);
  f.code = text_of(m.code);
  if (f.type.empty()) f.type = text_of(m.status);
  f.stated_status = status_in(f.code);
  // Groq's {"status_code": 400} states the status; MiniMax's base_resp
  // status_code is its error code.
  if (const std::string status_code = text_of(m.status_code); !status_code.empty()) {
    if (const int stated = status_in(status_code); stated != 0) f.stated_status = stated;
    else if (f.code.empty()) f.code = status_code;
  }
  if (m.details) read_google_details(*m.details, f);
  // OpenRouter: "Provider returned error" with the upstream's own reason in
  // metadata.raw, as JSON text or plain text.
  std::string_view raw;
  if (m.metadata && (*m.metadata)["raw"].get_string().get(raw) == simdjson::SUCCESS && !raw.empty()) {
    f.message = f.message.empty() ? std::string(raw) : f.message + ": " + std::string(raw);
  }
  if (m.nested && m.nested->is_object()) {
    // {"error": {"error": {...}}}: OpenRouter and some gateways nest twice.
    ErrorFields inner;
    read_error_object(*m.nested, inner);
    if (!inner.message.empty()) {
      if (inner.stated_status == 0) inner.stated_status = f.stated_status;
      f = std::move(inner);
    }
  }
}

// RFC 9457 problem details (Cloudflare's edge, many gateways): the title and
// detail are the message; a retry_after member is a delay in seconds.
bool read_problem_details(element root, ErrorFields& f) {
  const std::string title = member_text(root, "title");
  if (title.empty() || (!member(root, "status") && !member(root, "detail"))) {
    return false;
  }
  f.found = f.problem_details = true;
  f.message = title;
  if (const std::string detail = member_text(root, "detail"); !detail.empty()) f.message += ": " + detail;
  f.code = member_text(root, "error_name");
  f.stated_status = status_in(member_text(root, "status"));
  return true;
}

// A delay in seconds as a member of the error or its envelope (problem
// details' retry_after, Replicate's, some gateways' retryAfter).
void read_delay_member(element object, ErrorFields& f) {
  if (f.delay) return;
  for (std::string_view key : {"retry_after", "retryAfter", "retry_after_seconds"}) {
    double seconds = 0;
    if (auto after = member(object, key);
        after && after->get_double().get(seconds) == simdjson::SUCCESS && std::isfinite(seconds) && seconds >= 0) {
      f.delay = std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(std::min(seconds, 1e9) * 1000)));
      return;
    }
  }
}

// A 200 reply that is a safety verdict, not an answer: a blocked prompt, a
// candidate that finished for safety, filtered predictions.
bool read_safety_verdict(element root, ErrorFields& f) {
  element v;
  if (root.at_pointer("/promptFeedback/blockReason").get(v) == simdjson::SUCCESS) {
    f.type = "blockReason";
    f.code = scalar_text(v);
    f.message = "prompt blocked: " + f.code;
  } else if (root.at_pointer("/candidates/0/finishReason").get(v) == simdjson::SUCCESS) {
    const std::string reason = scalar_text(v);
    static constexpr std::string_view kSafety[] = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST",
                                                   "SPII",   "IMAGE_SAFETY",       "RECITATION"};
    if (std::find(std::begin(kSafety), std::end(kSafety), reason) == std::end(kSafety)) return false;
    f.type = "finishReason";
    f.code = reason;
    f.message = "candidate finished with " + reason;
  } else if (root.at_pointer("/predictions/0/raiFilteredReason").get(v) == simdjson::SUCCESS) {
    f.type = "raiFilteredReason";
    f.message = scalar_text(v);
  } else {
    return false;
  }
  f.found = f.safety_block = true;
  return true;
}

// Envelopes of APIs that do not use {"error": {...}}: the error object they
// use instead, if the body is one, and the code table its codes are from.
struct RegionalError {
  element error;
  CodeTable table = CodeTable::kNone;
};

std::optional<RegionalError> regional_error(element root) {
  if (auto r = member(root, "base_resp")) {  // MiniMax: status_code 0 is success
    if (member_text(*r, "status_code") != "0") return RegionalError{*r, CodeTable::kMiniMax};
  }
  if (auto r = member(root, "Response")) {  // Tencent Cloud
    if (auto e = member(*r, "Error")) return RegionalError{*e, CodeTable::kTencent};
  }
  // iFlytek Spark: the reply's header carries the code; 0 is success.
  if (auto h = member(root, "header"); h && h->is_object()) {
    if (auto code = member(*h, "code"); code && code->is_number() && member_text(*h, "code") != "0") {
      return RegionalError{*h, CodeTable::kSpark};
    }
  }
  if (auto s = member(root, "status"); s && s->is_object()) {  // NAVER CLOVA Studio
    if (const std::string code = member_text(*s, "code"); !code.empty() && code != "20000") return RegionalError{*s};
  }
  simdjson::dom::array errors;  // Cloudflare's API envelope
  if (auto e = member(root, "errors"); e && e->get_array().get(errors) == simdjson::SUCCESS && errors.size() > 0) {
    return RegionalError{errors.at(0).value_unsafe()};
  }
  if (auto r = member(root, "response")) {  // OpenAI Responses API: response.failed
    if (auto e = member(*r, "error"); e && e->is_object()) return RegionalError{*e};
  }
  return std::nullopt;
}

// Zhipu's error codes are four-digit strings from 1000 ("1261"), in an
// error object without a type; other APIs' numeric codes are HTTP statuses.
bool zhipu_style_code(const ErrorFields& f) {
  return f.type.empty() && f.code.size() == 4 && f.code >= "1000" && f.code <= "1399" && is_digit(f.code[3]) &&
         is_digit(f.code[1]) && is_digit(f.code[2]);
}

void add_documented_meaning(CodeTable table, ErrorFields& f) {
  append_word(f.details, documented_meaning(table, f.code));
}

void read_root(element root, ErrorFields& f) {
  if (read_safety_verdict(root, f)) return;
  read_delay_member(root, f);
  if (auto err = member(root, "error")) {
    if (err->is_object()) {
      read_error_object(*err, f);
      read_delay_member(*err, f);
      if (zhipu_style_code(f)) add_documented_meaning(CodeTable::kZhipu, f);
    } else {
      f.found = true;
      f.message = scalar_text(*err);
      f.code = member_text(root, "code");
      f.type = member_text(root, "type");
      f.stated_status = status_in(f.code);
    }
  } else if (read_problem_details(root, f)) {
  } else if (auto regional = regional_error(root)) {
    read_error_object(regional->error, f);
    add_documented_meaning(regional->table, f);
  } else if (member_text(root, "object") == "error" || member_text(root, "type") == "error" ||
             member(root, "message") || member(root, "detail") || member(root, "error_msg") ||
             (member(root, "code") && member(root, "msg"))) {
    // vLLM {"object":"error",...}, FastAPI {"detail":...}, bare {"message":...},
    // Baidu {"error_code":..,"error_msg":..}, Qianfan {"code":..,"msg":..}
    read_error_object(root, f);
    if (f.type == "error") f.type.clear();
    if (member(root, "error_code")) {  // Baidu's codes are its own, not HTTP statuses (110: token invalid)
      f.stated_status = 0;
      add_documented_meaning(CodeTable::kBaidu, f);
    }
  }
}

void read_body(std::string_view body, ErrorFields& f, int depth) {
  if (body.empty() || body.size() > kMaxParsedBody) return;
  // One reusable parser per unwrap depth and thread: the elements of an outer
  // document stay valid while an inner one is parsed.
  thread_local std::array<simdjson::dom::parser, kMaxUnwrapDepth + 1> parsers;
  element root;
  if (parsers[static_cast<std::size_t>(depth)].parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) {
    return;
  }
  f.json = true;
  if (root.is_array()) {  // Gemini streamGenerateContent wraps the status in a list
    simdjson::dom::array arr = root.get_array().value_unsafe();
    if (arr.size() == 0) return;
    root = arr.at(0).value_unsafe();
  }
  if (!root.is_object()) return;
  read_root(root, f);
  if (!f.message.empty()) unwrap_embedded(f, depth);
}

}  // namespace

bool looks_like_html(std::string_view body) {
  auto trimmed = trim(body.substr(0, 512));
  return istarts_with(trimmed, "<!doctype html") || istarts_with(trimmed, "<html") || istarts_with(trimmed, "<head") ||
         istarts_with(trimmed, "<?xml");
}

ErrorFields read_error_fields(const Headers& headers, std::string_view body) {
  ErrorFields f;
  read_body(body, f, 0);
  // AWS names the error in a header (and in event-stream frames): the type
  // before the first ':' ("ThrottlingException:http://internal.amazon.com/...").
  for (std::string_view name : {"x-amzn-errortype", ":exception-type", ":error-code"}) {
    const std::string* value = find_header(headers, name);
    if (!value) continue;
    const std::string_view type = trim(std::string_view(*value).substr(0, value->find(':')));
    if (f.type.empty()) f.type = std::string(type);
    else if (!iequals(type, f.type)) append_word(f.details, type);
    f.found = true;
    break;
  }
  return f;
}

}  // namespace llmguard::internal
