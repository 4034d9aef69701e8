//===- ChatTemplateFuzzer.cpp - fuzz chat template parsing and rendering --===//
//
// Each input is a template, optionally followed by a NUL byte and a messages
// JSON document (otherwise a fixed conversation with tool calls is used). It
// is parsed, then rendered with and without the generation prompt: errors
// are fine (each one line), crashes, hangs and leaks are not.
//
//===----------------------------------------------------------------------===//
#include "OneLineCheck.h"
#include "text/ChatTemplate.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string input(reinterpret_cast<const char *>(data), size);
  std::string source = input, messages;
  size_t nul = input.find('\0');
  if (nul != std::string::npos) {
    source = input.substr(0, nul);
    messages = input.substr(nul + 1);
  } else {
    messages =
        R"([{"role":"system","content":"S"},{"role":"user","content":"hé"},)"
        R"({"role":"assistant","content":null,"tool_calls":[{"type":"function",)"
        R"("function":{"name":"f","arguments":"{}"}}]},)"
        R"({"role":"tool","content":"r"},{"role":"assistant","content":"ok"}])";
  }
  std::string error, out;
  auto t = dsrt::text::ChatTemplate::parse(source, error);
  if (!t) {
    requireOneLine(error);
    return 0;
  }
  if (!t->render(messages, false, R"({"bos_token":"<s>","eos_token":"</s>"})",
                 out, error))
    requireOneLine(error);
  if (!t->render(messages, true, "", out, error))
    requireOneLine(error);
  return 0;
}
