//===- Error.cpp - the C API's error reporting ----------------------------===//
#include "api/Error.h"

#include <cstdio>
#include <cstdlib>

using namespace dsrt;

static thread_local std::string lastError;

void dsrt::setLastError(const std::string &message) { lastError = message; }

dsrt_status dsrt::fail(dsrt_status status, const std::string &message) {
  lastError = message;
  return status;
}

std::string dsrt::joinLines(const std::vector<std::string> &lines) {
  std::string out;
  for (const std::string &l : lines)
    out += (out.empty() ? "" : "\n") + l;
  return out;
}

void dsrt::fatalInternalError(const std::string &message) {
  std::fprintf(stderr, "dsrt: internal error: %s\n", message.c_str());
  std::abort();
}

extern "C" const char *dsrt_last_error(void) { return lastError.c_str(); }
