#include "classify_rules.h"

#include <fmt/format.h>

#include <span>
#include <vector>

#include "phrase_matcher.h"
#include "text.h"

namespace llmguard::internal {
namespace {

using Category = ErrorCategory;

// What every rule may look at. `status` is the one the rules trust: the
// status the error states itself when the transport's says little (200, a
// proxy's 5xx); for an upstream error unwrapped from a proxy's text without
// a status of its own, none (0).
struct Evidence {
  int status = 0;
  int http_status = 0;
  const ErrorFields* fields = nullptr;
  bool html = false;
  PhraseBits found;
};

using Gate = bool (*)(const Evidence&);

// A rule as written: '|'-separated word families. The rule holds when any of
// `words` occurs (or `words` is empty), and any of `with` (if given), and
// none of `unless`, and its gate (if any) passes.
struct RuleSpec {
  std::string_view id;
  Category category;
  std::string_view words, with = {}, unless = {};
  Gate gate = nullptr;
};

bool not_400(const Evidence& e) { return e.status != 400; }
bool not_402(const Evidence& e) { return e.status != 402; }
bool not_429(const Evidence& e) { return e.status != 429; }
bool is_402(const Evidence& e) { return e.status == 402; }
bool is_404(const Evidence& e) { return e.status == 404; }
bool safety_verdict(const Evidence& e) { return e.fields->safety_block; }
bool unwrapped(const Evidence& e) { return e.fields->unwrapped; }
// Loose permission words ("forbidden", "not allowed") also describe invalid
// fields ("extra_forbidden"): trusted only where the status agrees or says
// nothing.
bool access_status(const Evidence& e) { return e.status == 401 || e.status == 403 || e.status == 0 || e.status == 200; }
bool status_401(const Evidence& e) { return e.status == 401; }
bool retryable_status(const Evidence& e) {
  return e.status < 400 || e.status >= 500 || e.status == 408 || e.status == 429 || e.status == 409;
}
// An HTML page with a 4xx/5xx is a gateway's; one with a 2xx/3xx (an SSO
// login page, a captive portal) is nothing a retry is known to cure.
bool html_error(const Evidence& e) { return e.html && e.status >= 400; }

constexpr std::string_view kQuota =
    "insufficient quota|insufficient user quota|insufficient balance|insufficient credit|insufficient account "
    "balance|insufficient funds|quota exhausted|exhausted your quota|quota will reset|credit balance|more credits|out "
    "of credits|no credits|can only afford|billing|"
    "payment required|exceeded your current quota|quota exceeded|exceeded your monthly|spending limit|budget has been "
    "exceeded|budget exceeded|exceeded budget|usage limit|arrearage|in arrears|good standing|used up|used all your|"
    "free allocation|recharge|top up|overdue|balance is not enough|not enough balance|account "
    "balance|余额不足|欠费|充值|"
    "资源包|额度";
constexpr std::string_view kPerWindow =
    "per minute|perminute|per second|persecond|requests per min|tokens per min|rpm|tpm|qps|rps";
constexpr std::string_view kPerDay = "per day|perday|daily|per month|monthly|today|今日|当日|每日|本月";
constexpr std::string_view kLimitHit =
    "rate limit|limit exceeded|limit reached|exceeded the limit|reached the limit|limit has been reached|限额|上限";
constexpr std::string_view kContext =
    "context length|context window|maximum context|context size|prompt is too long|input is too long|too many "
    "tokens|too many input tokens|reduce the length|tokens exceeds|exceeds the maximum number of tokens|max tokens per "
    "request|tokens per request|string above max length|input token count|exceeds the limit of|prompt too long|"
    "maximum input length|input length|max new tokens|maximum prompt length|prompt length|input too long|too long "
    "for|exceeds the context|maximum number of tokens|payload too large|entity too large|body too large|message is "
    "too long|上下文|超出最大";
constexpr std::string_view kContent =
    "content filter|content policy|content management policy|content moderation|responsible ai policy|flagged|safety "
    "system|content filtering|blocked by|unsafe generation|unsafe content|high risk|safety reasons|usage policies|"
    "violat|prohibited content|harm category|inappropriate content|data inspection failed|exists risk|content risk|"
    "sensitive content|sensitive words|contains sensitive|new sensitive|sensitive information|guardrail|moderation "
    "block|flagged by moderation|"
    "safety filter|blocked for safety|rai filtered|敏感|违规|不安全|内容安全|风险";
constexpr std::string_view kAuth =
    "invalid api key|incorrect api key|api key not valid|api key invalid|invalid x api key|authentication error|"
    "authenticationerror|invalid authentication|unauthenticated|invalid token|token is inactive|token not found|token "
    "has expired|key has expired|expired api key|api key expired|revoked|no api key|missing api key|api key is "
    "missing|missing authentication|invalid subscription key|not authenticated|invalid bearer|access token|invalid "
    "proxy server token|bad credentials|unauthorized|security token|unrecognized client|signature does not match|"
    "invalid signature|request signature|invalid credentials|credentials are invalid|invalid key|authentication "
    "failed|auth failed|incorrect key|wrong api key|invalid api token|not a valid api key|认证失败|鉴权失败|令牌";
constexpr std::string_view kScopes = "insufficient permissions|missing scopes";
constexpr std::string_view kModelStrong =
    "model not found|model decommissioned|decommissioned|deployment not found|deploymentnotfound|not found error|"
    "notfounderror|no endpoints found|not found try pulling|is not found for api version|unknown model|no such model|"
    "model not available|invalid model|not a valid model|model identifier is invalid|with on demand throughput|"
    "non serverless model|version does not exist|model does not exist|model not exist|unsupported model|model is "
    "deprecated|allowed now "
    "your model|模型不存在";
constexpr std::string_view kNotFound = "not found|does not exist|not exist|不存在";
constexpr std::string_view kModelLoose = "does not exist|is not supported|invalid model|unknown model|not found";
constexpr std::string_view kOtherResource =
    "cache content|cached content|cachedcontent|file|thread|assistant|batch|vector store|fine tuning job";
// What a "does not exist" is about when it is not the model.
constexpr std::string_view kNotModel =
    "cache content|cached content|cachedcontent|file|thread|assistant|batch|vector store|fine tuning job|permission";
constexpr std::string_view kPermissionStrong =
    "permission error|permission denied|insufficient permissions|missing scopes|unsupported country|request "
    "forbidden|not available for this org|upgrade to access|usage is required|plan is required|subscription is "
    "required|requires a subscription|requires a paid|not available on your plan|location is not "
    "supported|user location|not agreed|model terms|must be verified|verify your organization|access denied "
    "exception";
constexpr std::string_view kPermissionWeak =
    "not allowed|does not have access|do not have access|don t have access|not authorized|forbidden|access is "
    "denied|not available in your|region|access denied|organization has been disabled|account is not active|"
    "inactive|public access|virtual network|firewall|not enabled|suspended";
constexpr std::string_view kRate =
    "rate limit|ratelimit|too many requests|throttl|slow down|resource exhausted|resource has been exhausted|"
    "concurrency|concurrent|requests per|tokens per|try again in|rpm|tpm|qps|rate exceeded|request limit|频繁|限流|"
    "并发";
constexpr std::string_view kTransient =
    "overloaded|server error|api error|internal server error|internal error|service unavailable|temporarily "
    "unavailable|bad gateway|gateway timeout|upstream|unavailable|deadline exceeded|timed out|timeout|try again "
    "later|capacity|unable to process|busy|cancelled|canceled|not ready|connection reset|please retry|繁忙|稍后|"
    "访问量过大|过载";
constexpr std::string_view kOverload = "overload|capacity|busy|unable to process|访问量过大|过载|繁忙";
constexpr std::string_view kInvalidRequest = "invalid request error|invalid argument|invalid parameter";
constexpr std::string_view kBadRequest =
    "invalid request error|invalid argument|invalid request|bad request|validation|invalid parameter|malformed";

// In order: the first rule that holds decides. Specific wording before
// general, what the provider says before what the status suggests.
constexpr RuleSpec kRules[] = {
    // One request above a per-minute token allowance (Groq 413, OpenAI 429
    // "Request too large ... TPM"): waiting cannot help, a smaller request or
    // another target can, which is what context_overflow does.
    {"context.over_tier", Category::kContextOverflow,
     "request too large|reduce your message size|must be reduced in order to run"},
    {"quota.status_402", Category::kQuotaExhausted, "", "", "", is_402},
    // A quota of a short window (a per-minute QuotaFailure, "tokens per min")
    // is a rate limit: waiting helps. A daily or monthly one is not.
    {"rate.per_window_quota", Category::kRateLimit, kQuota, kPerWindow, kPerDay, not_402},
    {"quota.words", Category::kQuotaExhausted, kQuota},
    {"quota.daily_limit", Category::kQuotaExhausted, kLimitHit, kPerDay, kPerWindow},
    // Bedrock throttles a daily token quota with ThrottlingException "Too many
    // tokens per day, please wait before trying again.": a wait of seconds does not help.
    {"quota.daily_throttle", Category::kQuotaExhausted, "too many tokens|too many requests", kPerDay, kPerWindow},
    {"context.words", Category::kContextOverflow, kContext, "",
     "max tokens must|allowed number of output|please wait|per minute", not_429},
    {"content_filter.safety_verdict", Category::kContentFilter, "", "", "", safety_verdict},
    {"content_filter.words", Category::kContentFilter, kContent},
    {"auth.words", Category::kAuth, kAuth, "", kScopes},
    // Codes and phrases that name a missing or retired model count at any
    // status (Groq answers 400 for a decommissioned model); looser phrases
    // ("does not exist", "not supported") only off a 400, where they more
    // often describe a parameter.
    {"model_not_found.words", Category::kModelNotFound, kModelStrong},
    {"model_not_found.model_missing", Category::kModelNotFound, "model", kNotFound, kNotModel},
    {"model_not_found.loose", Category::kModelNotFound, kModelLoose, "", kNotModel, not_400},
    {"auth.permission_word_at_401", Category::kAuth, kPermissionWeak, "", "permission", status_401},
    {"permission.words", Category::kPermission, kPermissionStrong},
    {"permission.access_words", Category::kPermission, kPermissionWeak, "", "", access_status},
    // Bedrock's exceptions of a model or service that may answer next time,
    // whatever status carries them (ModelNotReadyException comes as a 429,
    // ModelErrorException as a 424, stream exceptions in a 200).
    {"transient.aws_exception", Category::kTransient,
     "model not ready exception|model error exception|model stream error exception|internal server exception|"
     "service unavailable exception"},
    {"rate_limit.words", Category::kRateLimit, kRate, "", "", not_400},
    {"rate_limit.busy_at_429", Category::kRateLimit, kTransient, "", kOverload,
     [](const Evidence& e) { return e.status == 429; }},
    {"transient.words", Category::kTransient, kTransient, "", "", retryable_status},
    {"bad_request.upstream_refused", Category::kBadRequest, kInvalidRequest, "", "", unwrapped},
    {"bad_request.other_resource_404", Category::kBadRequest, kOtherResource, kNotFound, "", is_404},
    {"bad_request.words_at_200", Category::kBadRequest, kInvalidRequest, "", "",
     [](const Evidence& e) { return e.status == 200; }},
};

// After the status: what words still say when the status says nothing.
constexpr RuleSpec kAfterStatus[] = {
    {"transient.html_page", Category::kTransient, "", "", "", html_error},
    {"bad_request.words", Category::kBadRequest, kBadRequest},
};

struct Rule {
  const RuleSpec* spec;
  PhraseSet words, with, unless;
};

// Phrases match at word starts: those that begin with a letter or digit get
// the space every word of a normalised text begins with.
void insert_family(PhraseMatcher& matcher, PhraseSet& set, std::string_view family) {
  std::string normalised;
  while (!family.empty()) {
    const std::size_t bar = family.find('|');
    const std::string_view phrase = family.substr(0, bar);
    family = bar == std::string_view::npos ? std::string_view() : family.substr(bar + 1);
    normalise_words(phrase, normalised);
    std::string_view p = normalised;
    if (p.size() > 1 && static_cast<unsigned char>(p[1]) >= 0x80) p.remove_prefix(1);  // other scripts: anywhere
    if (p.ends_with(' ')) p.remove_suffix(1);  // a stem: "token" matches "tokens"
    set.insert(matcher, p);
  }
}

struct RuleBook {
  PhraseMatcher matcher;
  std::vector<Rule> rules, after_status;
  // The words a delay written in a message follows ("try again in 20s"):
  // only messages holding one are searched for it.
  PhraseSet delay_lead;
  RuleBook() {
    add(kRules, rules);
    add(kAfterStatus, after_status);
    insert_family(matcher, delay_lead, "try again in|retry in|retry after|try again after|wait|reset|resets");
    matcher.build();
  }
  void add(std::span<const RuleSpec> specs, std::vector<Rule>& to) {
    for (const RuleSpec& spec : specs) {
      Rule r{&spec, {}, {}, {}};
      insert_family(matcher, r.words, spec.words);
      insert_family(matcher, r.with, spec.with);
      insert_family(matcher, r.unless, spec.unless);
      to.push_back(std::move(r));
    }
  }
};

const RuleBook& rule_book() {
  static const RuleBook book;
  return book;
}

bool holds(const Rule& r, const Evidence& e) {
  if (!r.words.empty() && !r.words.any(e.found)) return false;
  if (!r.with.empty() && !r.with.any(e.found)) return false;
  if (!r.unless.empty() && r.unless.any(e.found)) return false;
  return r.spec->gate == nullptr || r.spec->gate(e);
}

std::string evidence_of(const Rule& r, const Evidence& e, const PhraseMatcher& m) {
  std::string out;
  for (const PhraseSet* set : {&r.words, &r.with}) {
    if (const int id = set->first(e.found); id >= 0) {
      if (!out.empty()) out += " + ";
      out += fmt::format("\"{}\"", trim(m.phrase(static_cast<std::uint16_t>(id))));
    }
  }
  if (r.spec->gate != nullptr) out += fmt::format("{}HTTP {}", out.empty() ? "" : " at ", e.status);
  return out;
}

Category by_status(int status, bool& decided) {
  decided = true;
  switch (status) {
    case 401:
      return Category::kAuth;
    case 403:
      return Category::kPermission;
    case 404:
      return Category::kModelNotFound;
    case 429:
      return Category::kRateLimit;
    case 402:
      return Category::kQuotaExhausted;
    case 408:
    case 409:
    case 425:
      return Category::kTransient;
    // Too large for this target (an API's or a gateway's body limit): the same
    // request fails here again, a shorter one or another target may not.
    case 413:
      return Category::kContextOverflow;
    case 400:
    case 405:
    case 411:
    case 414:
    case 415:
    case 422:
      return Category::kBadRequest;
    default:
      break;
  }
  if (status >= 500) return Category::kTransient;
  decided = false;
  return Category::kUnknown;
}

}  // namespace

void normalise_words(std::string_view text, std::string& out) {
  out.assign(1, ' ');
  append_normalised(text, out);
}

void append_normalised(std::string_view text, std::string& out) {
  if (out.empty()) out += ' ';
  char previous = ' ';
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == 'h' || c == 'H') &&
        (istarts_with(text.substr(i), "http://") || istarts_with(text.substr(i), "https://"))) {
      while (i < text.size() && !is_space(text[i]) && text[i] != '"' && text[i] != '\'' && text[i] != ')') ++i;
      if (out.back() != ' ') out += ' ';
      previous = ' ';
      continue;
    }
    const bool upper = c >= 'A' && c <= 'Z';
    const bool lower = (c >= 'a' && c <= 'z') || is_digit(c);
    if (upper || lower || static_cast<unsigned char>(c) >= 0x80) {
      // camelCase: "DeploymentNotFound" -> "deployment not found"; an
      // acronym's last capital starts the next word ("HTTPError").
      const bool next_lower = i + 1 < text.size() && text[i + 1] >= 'a' && text[i + 1] <= 'z';
      if (upper && ((previous >= 'a' && previous <= 'z') || (previous >= 'A' && previous <= 'Z' && next_lower)) &&
          out.back() != ' ') {
        out += ' ';
      }
      out += ascii_lower(c);
      previous = c;
    } else {
      if (out.back() != ' ') out += ' ';
      previous = ' ';
    }
  }
  if (out.back() != ' ') out += ' ';
}

Verdict categorize(int http_status, const ErrorFields& f, bool html, bool want_evidence) {
  Evidence e;
  e.http_status = http_status;
  e.fields = &f;
  e.html = html;
  e.status = http_status;
  if (f.stated_status != 0 && (http_status == 200 || http_status == 0 || http_status >= 500 || f.unwrapped)) {
    e.status = f.stated_status;
  } else if (f.unwrapped) {
    e.status = 0;
  }
  const RuleBook& book = rule_book();
  thread_local std::string text;
  text.clear();
  for (const std::string* part : {&f.code, &f.type, &f.details, &f.message}) append_normalised(*part, text);
  book.matcher.scan(text, e.found);
  auto verdict = [&](const Rule& r) {
    return Verdict{r.spec->category, r.spec->id, want_evidence ? evidence_of(r, e, book.matcher) : std::string(),
                   book.delay_lead.any(e.found)};
  };
  for (const Rule& r : book.rules) {
    if (holds(r, e)) return verdict(r);
  }
  if (e.status == 0) e.status = http_status;
  bool decided = false;
  const Category by_code = by_status(e.status, decided);
  if (decided) {
    return {by_code, "status", want_evidence ? fmt::format("HTTP {}", e.status) : std::string(),
            book.delay_lead.any(e.found)};
  }
  for (const Rule& r : book.after_status) {
    if (holds(r, e)) return verdict(r);
  }
  return {Category::kUnknown, "unknown", {}, book.delay_lead.any(e.found)};
}

}  // namespace llmguard::internal
