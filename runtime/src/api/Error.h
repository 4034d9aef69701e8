//===- Error.h - the C API's error reporting --------------------*- C++ -*-===//
//
// Every C entry point returns a dsrt_status and leaves one line (or one
// line per checkpoint problem) in a thread-local message. C++ exceptions
// (only std::bad_alloc can arise) never cross the C boundary.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_API_ERROR_H
#define DSRT_API_ERROR_H

#include "dsrt/dsrt.h"

#include <new>
#include <string>
#include <vector>

namespace dsrt {

void setLastError(const std::string &message);

/// Sets the message and returns `status`, for `return fail(...)`.
dsrt_status fail(dsrt_status status, const std::string &message);

/// The lines joined with '\n' (the C API's format for several problems).
std::string joinLines(const std::vector<std::string> &lines);

/// Runs `body` (returning dsrt_status), turning an allocation failure into
/// DSRT_ERROR_OUT_OF_MEMORY instead of std::terminate.
template <typename Body> dsrt_status guarded(const char *what, Body &&body) {
#if defined(__cpp_exceptions)
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return fail(DSRT_ERROR_OUT_OF_MEMORY,
                std::string(what) + ": out of memory");
  }
#else
  (void)what;
  return body();
#endif
}

/// Reports a broken invariant between generated code and the runtime (a
/// compiler bug, not bad input) on stderr and aborts: continuing would
/// read or write outside buffers.
[[noreturn]] void fatalInternalError(const std::string &message);

} // namespace dsrt

#endif // DSRT_API_ERROR_H
