// Umbrella header: everything a program that calls guarded_chat() needs.
#ifndef LLMGUARD_LLMGUARD_H_
#define LLMGUARD_LLMGUARD_H_

#include "llmguard/cancellation.h"
#include "llmguard/client.h"
#include "llmguard/config.h"
#include "llmguard/error.h"
#include "llmguard/options.h"
#include "llmguard/providers.h"
#include "llmguard/runtime.h"
#include "llmguard/types.h"
#include "llmguard/usage.h"

#endif  // LLMGUARD_LLMGUARD_H_
