//===- ApiKey.h - bearer-token check for /v1 routes -----------------------===//
#ifndef DS_SERVE_APIKEY_H
#define DS_SERVE_APIKEY_H

#include <string>

namespace dsserve {

/// With an empty key every request passes. Otherwise the Authorization
/// header must be "Bearer <key>"; compared in time independent of where the
/// first difference is, so the key cannot be guessed byte by byte.
bool apiKeyAccepted(const std::string &key, const std::string &authorization);

} // namespace dsserve

#endif // DS_SERVE_APIKEY_H
