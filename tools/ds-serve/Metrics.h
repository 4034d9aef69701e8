//===- Metrics.h - Prometheus counters and histograms for GET /metrics ----===//
#ifndef DS_SERVE_METRICS_H
#define DS_SERVE_METRICS_H

#include "Backend.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace dsserve {

class Histogram {
public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  /// Prometheus text lines for `name` (buckets, _sum, _count).
  void render(const std::string &name, std::string &out) const;

private:
  std::vector<double> bounds;
  std::vector<uint64_t> counts; // per bucket, not cumulative; last = +Inf
  double sum = 0;
  uint64_t count = 0;
};

class Metrics {
public:
  Metrics();
  void requestFinished(const char *finishReason, int64_t promptTokens,
                       int64_t generatedTokens, double e2eSeconds);
  void firstToken(double seconds);
  void interToken(double seconds);
  void httpResponse(int status);
  /// The exposition text, with the backend's gauges of this moment.
  std::string render(const BackendStats &stats, int64_t inFlight) const;

private:
  mutable std::mutex mutex;
  uint64_t promptTokens = 0;
  uint64_t generationTokens = 0;
  std::map<std::string, uint64_t> finished; // by finish reason
  std::map<int, uint64_t> responses;        // by HTTP status
  Histogram ttft, itl, e2e;
};

} // namespace dsserve

#endif // DS_SERVE_METRICS_H
