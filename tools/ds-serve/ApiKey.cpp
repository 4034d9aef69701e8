//===- ApiKey.cpp - bearer-token check for /v1 routes ---------------------===//

#include "ApiKey.h"

namespace dsserve {

bool apiKeyAccepted(const std::string &key, const std::string &auth) {
  if (key.empty())
    return true;
  static const std::string prefix = "Bearer ";
  if (auth.size() != prefix.size() + key.size() ||
      auth.compare(0, prefix.size(), prefix) != 0)
    return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < key.size(); ++i)
    diff |= static_cast<unsigned char>(auth[prefix.size() + i] ^ key[i]);
  return diff == 0;
}

} // namespace dsserve
