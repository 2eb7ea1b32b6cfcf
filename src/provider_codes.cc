#include "provider_codes.h"

#include <span>
#include <utility>

namespace llmguard::internal {
namespace {

using Entry = std::pair<std::string_view, std::string_view>;

// Meanings, each in the words of one family of classify_rules.cc.
constexpr std::string_view kBalance = "insufficient balance";
constexpr std::string_view kDaily = "daily limit reached";
constexpr std::string_view kRate = "rate limit";
constexpr std::string_view kFilter = "content filter";
constexpr std::string_view kContext = "context length exceeded";
constexpr std::string_view kBadKey = "invalid api key";
constexpr std::string_view kDenied = "permission denied";
constexpr std::string_view kNoModel = "model not found";
constexpr std::string_view kParameter = "invalid parameter";
constexpr std::string_view kServer = "internal error";
constexpr std::string_view kTimedOut = "timed out";

// iFlytek Spark, the codes of its chat API's header (xfyun.cn Spark API
// documentation, "错误码"; the same table in langchain4j's
// SparkResponseErrorCode and iflytek/astron-agent).
constexpr Entry kSpark[] = {
    {"10003", kParameter}, {"10004", kParameter}, {"10005", kParameter}, {"10006", kRate},   {"10007", kRate},
    {"10008", kServer},    {"10009", kServer},    {"10010", kServer},    {"10012", kServer}, {"10013", kFilter},
    {"10014", kFilter},    {"10015", kDenied},    {"10016", kDenied},    {"10019", kFilter}, {"10110", kServer},
    {"10163", kParameter}, {"10222", kServer},    {"10907", kContext},   {"11200", kDenied}, {"11201", kDaily},
    {"11202", kRate},      {"11203", kRate},
};

// MiniMax base_resp.status_code (platform.minimax.io, API reference "Error codes").
constexpr Entry kMiniMax[] = {
    {"1001", kTimedOut}, {"1002", kRate},   {"1004", kBadKey}, {"1008", kBalance},   {"1013", kServer},
    {"1026", kFilter},   {"1027", kFilter}, {"1039", kRate},   {"2013", kParameter}, {"2049", kBadKey},
};

// Baidu Qianfan / ERNIE error_code (ai.baidu.com WENXINWORKSHOP error codes;
// bce-qianfan-sdk's consts.py).
constexpr Entry kBaidu[] = {
    {"2", kServer},         {"4", kRate},           {"6", kDenied},         {"13", kBadKey},
    {"14", kBadKey},        {"17", kDaily},         {"18", kRate},          {"19", kBalance},
    {"100", kParameter},    {"110", kBadKey},       {"111", kBadKey},       {"336000", kServer},
    {"336001", kParameter}, {"336002", kParameter}, {"336003", kParameter}, {"336006", kParameter},
    {"336007", kContext},   {"336100", kServer},    {"336103", kContext},   {"336104", kParameter},
    {"336501", kRate},      {"336502", kRate},
};

// Zhipu GLM (docs.bigmodel.cn, API "错误码").
constexpr Entry kZhipu[] = {
    {"1000", kBadKey},    {"1001", kBadKey},  {"1002", kBadKey},    {"1003", kBadKey},    {"1004", kBadKey},
    {"1110", kDenied},    {"1111", kDenied},  {"1112", kDenied},    {"1113", kBalance},   {"1120", kDenied},
    {"1210", kParameter}, {"1211", kNoModel}, {"1212", kParameter}, {"1213", kParameter}, {"1214", kParameter},
    {"1220", kDenied},    {"1221", kNoModel}, {"1222", kParameter}, {"1230", kServer},    {"1231", kParameter},
    {"1234", kServer},    {"1261", kContext}, {"1301", kFilter},    {"1302", kRate},      {"1303", kRate},
    {"1304", kDaily},     {"1305", kRate},    {"1308", kBalance},   {"1309", kBalance},   {"1310", kBalance},
};

// Tencent Cloud API 3.0: Hunyuan's codes (tencentcloud-sdk-python,
// hunyuan/v20230901/errorcodes.py) and the common ones every product shares.
constexpr Entry kTencent[] = {
    {"AuthFailure.SecretIdNotFound", kBadKey},
    {"AuthFailure.SignatureExpire", kBadKey},
    {"AuthFailure.SignatureFailure", kBadKey},
    {"AuthFailure.TokenFailure", kBadKey},
    {"AuthFailure.InvalidSecretId", kBadKey},
    {"AuthFailure.InvalidAuthorization", kBadKey},
    {"AuthFailure.UnauthorizedOperation", kDenied},
    {"UnauthorizedOperation", kDenied},
    {"FailedOperation.EngineRequestTimeout", kTimedOut},
    {"FailedOperation.EngineServerError", kServer},
    {"FailedOperation.EngineServerLimitExceeded", kRate},
    {"FailedOperation.FreeResourcePackExhausted", kBalance},
    {"FailedOperation.ServiceNotActivated", kDenied},
    {"FailedOperation.ServiceStop", kBalance},
    {"FailedOperation.ServiceStopArrears", kBalance},
    {"InternalError", kServer},
    {"InvalidParameter", kParameter},
    {"InvalidParameterValue", kParameter},
    {"InvalidParameterValue.Model", kNoModel},
    {"LimitExceeded", kRate},
    {"OperationDenied.ImageIllegalDetected", kFilter},
    {"OperationDenied.TextIllegalDetected", kFilter},
    {"RequestLimitExceeded", kRate},
    {"ResourceInsufficient.ChargeResourceExhaust", kBalance},
    {"ResourceUnavailable.InArrears", kBalance},
    {"ResourceUnavailable.LowBalance", kBalance},
    {"ResourceUnavailable.StopUsing", kBalance},
};

std::span<const Entry> table_of(CodeTable table) {
  switch (table) {
    case CodeTable::kSpark:
      return kSpark;
    case CodeTable::kMiniMax:
      return kMiniMax;
    case CodeTable::kBaidu:
      return kBaidu;
    case CodeTable::kZhipu:
      return kZhipu;
    case CodeTable::kTencent:
      return kTencent;
    case CodeTable::kNone:
      break;
  }
  return {};
}

}  // namespace

std::string_view documented_meaning(CodeTable table, std::string_view code) {
  for (const auto& [known, meaning] : table_of(table)) {
    if (known == code) return meaning;
  }
  return {};
}

}  // namespace llmguard::internal
