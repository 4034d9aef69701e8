//===- MultiRank.cpp - rank 0 steps, the other ranks follow ---------------===//
#include "engine/MultiRank.h"

#include "api/Error.h"
#include "api/Model.h"
#include "dsrt/dsrt_comm.h"

#include <cstring>

using namespace dsrt;
using namespace dsrt::engine;

namespace {

constexpr int64_t kMagic = 0x656e67696e655f31; // "1_engine": one protocol
enum Command : int64_t { Hello = 1, Step = 2, Idle = 3, Stop = 4, Failed = 5 };

struct Header {
  int64_t magic = kMagic;
  int64_t command = 0;
  int64_t args[6] = {0, 0, 0, 0, 0, 0};
};

dsrt_status broadcast(dsrt_model *model, void *data, int64_t bytes) {
  return dsrt_comm_broadcast(model->comm.get(), data, bytes, /*root=*/0);
}

template <typename T>
void put(std::vector<uint8_t> &out, const std::vector<T> &v) {
  size_t at = out.size();
  out.resize(at + v.size() * sizeof(T));
  if (!v.empty())
    std::memcpy(out.data() + at, v.data(), v.size() * sizeof(T));
}

/// Reads `n` elements; false when the payload is shorter.
template <typename T>
bool take(const std::vector<uint8_t> &in, size_t &at, std::vector<T> &v,
          int64_t n) {
  if (n < 0 || size_t(n) > (in.size() - at) / sizeof(T))
    return false;
  v.resize(size_t(n));
  if (n > 0)
    std::memcpy(v.data(), in.data() + at, size_t(n) * sizeof(T));
  at += size_t(n) * sizeof(T);
  return true;
}

std::vector<uint8_t> pack(const StepBatch &b) {
  std::vector<uint8_t> out;
  put(out, b.tokens);
  put(out, b.positions);
  put(out, b.seqIds);
  put(out, b.queryStart);
  put(out, b.contextLens);
  put(out, b.blockTables);
  put(out, b.logitsRows);
  return out;
}

/// The batch of a Step header's (T, S, R, max pages) and its payload; false
/// when they do not agree.
bool unpack(const Header &h, const std::vector<uint8_t> &in, StepBatch &b) {
  int64_t T = h.args[0], S = h.args[1], R = h.args[2], pages = h.args[3];
  if (pages < 0 || pages > INT32_MAX || S < 0 ||
      (pages && S > INT64_MAX / pages))
    return false;
  size_t at = 0;
  b.maxPagesPerSeq = int32_t(pages);
  return take(in, at, b.tokens, T) && take(in, at, b.positions, T) &&
         take(in, at, b.seqIds, S) && take(in, at, b.queryStart, S + 1) &&
         take(in, at, b.contextLens, S) &&
         take(in, at, b.blockTables, S * pages) &&
         take(in, at, b.logitsRows, R) && at == in.size();
}

std::string who(const dsrt_model *model) {
  return "rank " + std::to_string(model->rank) + " of " +
         std::to_string(model->worldSize);
}

} // namespace

LeaderExecutor::LeaderExecutor(dsrt_model *model,
                               std::unique_ptr<StepExecutor> inner)
    : model(model), inner(std::move(inner)),
      lastSent(std::chrono::steady_clock::now()) {}

LeaderExecutor::~LeaderExecutor() {
  {
    std::lock_guard<std::mutex> lock(beatMutex);
    stopping = true;
  }
  beatCv.notify_all();
  if (beat.joinable())
    beat.join();
  if (greeted) {
    std::lock_guard<std::mutex> lock(commMutex);
    send(Stop, nullptr, 0, nullptr);
  }
}

dsrt_status LeaderExecutor::send(int64_t command, const int64_t *args,
                                 int numArgs, std::vector<uint8_t> *payload) {
  Header h;
  h.command = command;
  for (int i = 0; i < numArgs && i < 6; ++i)
    h.args[i] = args[i];
  if (dsrt_status st = broadcast(model, &h, sizeof(h)))
    return st;
  if (payload && !payload->empty())
    if (dsrt_status st =
            broadcast(model, payload->data(), int64_t(payload->size())))
      return st;
  lastSent = std::chrono::steady_clock::now();
  return DSRT_OK;
}

dsrt_status LeaderExecutor::hello(int64_t numPages, int64_t maxContext) {
  int64_t args[2] = {numPages, maxContext};
  {
    std::lock_guard<std::mutex> lock(commMutex);
    if (dsrt_status st = send(Hello, args, 2, nullptr))
      return st;
  }
  greeted = true;
  beat = std::thread([this] { heartbeat(); });
  return DSRT_OK;
}

void LeaderExecutor::heartbeat() {
  // A quarter of the followers' timeout: a beat may come up to two periods
  // after the last message, still well inside it.
  auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(dsrt_comm_timeout(model->comm.get()) / 4));
  std::unique_lock<std::mutex> lock(beatMutex);
  while (!stopping) {
    beatCv.wait_for(lock, period);
    if (stopping)
      break;
    lock.unlock();
    {
      std::lock_guard<std::mutex> comm(commMutex);
      if (std::chrono::steady_clock::now() - lastSent >= period)
        send(Idle, nullptr, 0, nullptr);
    }
    lock.lock();
  }
}

dsrt_status LeaderExecutor::run(const StepBatch &b, float *logits) {
  // Refused here, a batch never reaches the followers: they keep waiting
  // for a step every rank can run.
  if (std::string problem = inner->check(b); !problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  std::vector<uint8_t> payload = pack(b);
  int64_t args[5] = {b.numTokens(), b.numSeqs(), int64_t(b.logitsRows.size()),
                     int64_t(b.maxPagesPerSeq), int64_t(payload.size())};
  std::lock_guard<std::mutex> lock(commMutex);
  if (dsrt_status st = send(Step, args, 5, &payload))
    return st;
  return inner->run(b, logits);
}

void dsrt::engine::announceFailure(dsrt_model *model, const std::string &why) {
  if (!model || !model->comm || model->rank != 0)
    return;
  std::string text = why.substr(0, 4096);
  std::vector<uint8_t> payload(text.begin(), text.end());
  Header h;
  h.command = Failed;
  h.args[0] = int64_t(payload.size());
  if (broadcast(model, &h, sizeof(h)) == DSRT_OK && !payload.empty())
    broadcast(model, payload.data(), int64_t(payload.size()));
}

dsrt_status dsrt::engine::followLeader(dsrt_model *model) {
  if (!model)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_follow: NULL model");
  if (!model->comm || model->worldSize <= 1)
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_engine_follow: " + model->artifactPath +
                    " is not partitioned (compile it with --tp/--ep and run "
                    "it under mpiexec)");
  if (model->rank == 0)
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_engine_follow: rank 0 owns the engine "
                "(dsrt_engine_create); only the other ranks follow it");
  auto receive = [&](Header &h) -> dsrt_status {
    if (dsrt_status st = broadcast(model, &h, sizeof(h)))
      return st;
    if (h.magic != kMagic)
      return fail(DSRT_ERROR_ARGUMENT,
                  who(model) + ": rank 0 sent something other than an engine "
                               "message (is it running the engine?)");
    return DSRT_OK;
  };
  Header h;
  if (dsrt_status st = receive(h))
    return st;
  if (h.command == Failed) {
    std::vector<uint8_t> text(size_t(std::max<int64_t>(h.args[0], 0)));
    if (!text.empty())
      if (dsrt_status st = broadcast(model, text.data(), int64_t(text.size())))
        return st;
    return fail(DSRT_ERROR_ARGUMENT,
                who(model) + ": rank 0 could not create its engine: " +
                    std::string(text.begin(), text.end()));
  }
  if (h.command != Hello)
    return fail(DSRT_ERROR_ARGUMENT,
                who(model) +
                    ": expected rank 0's engine to start, got "
                    "message " +
                    std::to_string(h.command));
  StepExecutor ex(model, /*maxContext=*/h.args[1], /*numPages=*/h.args[0]);
  if (std::string error = ex.allocate(); !error.empty())
    return fail(DSRT_ERROR_OUT_OF_MEMORY, who(model) + ": " + error);
  std::vector<uint8_t> payload;
  std::vector<float> logits;
  StepBatch batch;
  for (;;) {
    if (dsrt_status st = receive(h))
      return st;
    switch (h.command) {
    case Idle:
      continue;
    case Stop:
      return DSRT_OK;
    case Step:
      break;
    default:
      return fail(DSRT_ERROR_ARGUMENT, who(model) + ": unexpected message " +
                                           std::to_string(h.command) +
                                           " from rank 0");
    }
    if (h.args[4] < 0)
      return fail(DSRT_ERROR_ARGUMENT, who(model) + ": bad step payload size");
    payload.resize(size_t(h.args[4]));
    if (!payload.empty())
      if (dsrt_status st =
              broadcast(model, payload.data(), int64_t(payload.size())))
        return st;
    if (!unpack(h, payload, batch))
      return fail(DSRT_ERROR_ARGUMENT,
                  who(model) + ": a step from rank 0 does not hold the batch "
                               "its header announces");
    logits.resize(batch.logitsRows.size() * size_t(ex.vocabSize()));
    if (dsrt_status st = ex.run(batch, logits.data()))
      return fail(st, who(model) + ": " + dsrt_last_error());
  }
}
