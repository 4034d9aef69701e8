//===- ApiError.h - OpenAI's error object ----------------------------------===//
#ifndef DS_SERVE_APIERROR_H
#define DS_SERVE_APIERROR_H

#include <string>

namespace dsserve {

/// {"error": {"message", "type", "param", "code"}} with its HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param; // empty: null
  std::string code;  // empty: null

  static ApiError invalid(std::string message, std::string param = "") {
    return {400, std::move(message), "invalid_request_error", std::move(param),
            ""};
  }
  std::string toJson() const;
};

} // namespace dsserve

#endif // DS_SERVE_APIERROR_H
