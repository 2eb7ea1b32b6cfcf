// The numeric and named error codes that regional APIs document, as the
// words the classifier's rules read. Their messages are often Chinese, terse
// or generic ("Request failed"); their code tables are precise, and a code
// keeps its meaning however the message is worded.
#ifndef LLMGUARD_SRC_PROVIDER_CODES_H_
#define LLMGUARD_SRC_PROVIDER_CODES_H_

#include <string_view>

namespace llmguard::internal {

// Whose table a code is looked up in: which envelope the error came in.
enum class CodeTable {
  kNone,
  kSpark,    // iFlytek Spark: {"header": {"code": 10013, "message": ..., "sid": ...}}
  kMiniMax,  // {"base_resp": {"status_code": 1008, "status_msg": ...}}
  kBaidu,    // Qianfan / ERNIE: {"error_code": 17, "error_msg": ...}
  kZhipu,    // {"error": {"code": "1261", "message": ...}}
  kTencent,  // Tencent Cloud API 3.0: {"Response": {"Error": {"Code": "ResourceUnavailable.LowBalance", ...}}}
};

// What `code` means in `table`, in words the rules know ("insufficient
// balance", "rate limit"...); empty for a code the table does not hold.
std::string_view documented_meaning(CodeTable table, std::string_view code);

}  // namespace llmguard::internal

#endif  // LLMGUARD_SRC_PROVIDER_CODES_H_
