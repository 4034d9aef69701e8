//===- EngineApi.cpp - the engine's C API (dsrt_engine.h) -----------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "dsrt/dsrt_mtp.h"
#include "engine/Engine.h"
#include "engine/MultiRank.h"
#include "engine/GpuStepExecutor.h"
#include "engine/SessionExecutor.h"
#include "engine/Speculative.h"
#include "engine/StepExecutor.h"

#include <cstdlib>

using namespace dsrt;
using namespace dsrt::engine;

struct dsrt_engine {
  std::unique_ptr<Engine> engine;
};

extern "C" void dsrt_engine_options_default(dsrt_engine_options *o) {
  if (!o)
    return;
  *o = dsrt_engine_options{};
  o->enable_prefix_caching = 1;
}

extern "C" void dsrt_request_params_default(dsrt_request_params *p) {
  if (!p)
    return;
  *p = dsrt_request_params{};
  p->max_tokens = 16;
  p->top_p = 1.0f;
}

namespace {

/// The engine's configuration from the caller's options (zero fields take
/// their defaults) and the model's info, or the first problem with them.
dsrt_status engineConfig(dsrt_model *model, const dsrt_engine_options *o,
                         EngineConfig &c) {
  dsrt_model_info info;
  if (dsrt_status st = dsrt_model_info_get(model, &info))
    return st;
  if (o->max_model_len > info.max_position_embeddings)
    return fail(DSRT_ERROR_ARGUMENT,
                "max_model_len " + std::to_string(o->max_model_len) +
                    " exceeds the model's max_position_embeddings (" +
                    std::to_string(info.max_position_embeddings) + ")");
  c.maxModelLen =
      o->max_model_len > 0 ? o->max_model_len : info.max_position_embeddings;
  c.eosTokenId = info.eos_token_id;
  c.scheduler.maxNumSeqs = o->max_num_seqs > 0 ? o->max_num_seqs : 256;
  c.scheduler.maxNumBatchedTokens =
      o->max_num_batched_tokens > 0 ? o->max_num_batched_tokens : 2048;
  c.scheduler.prefixCaching = o->enable_prefix_caching != 0;
  if (o->scheduling_policy != DSRT_SCHEDULE_FCFS &&
      o->scheduling_policy != DSRT_SCHEDULE_PRIORITY)
    return fail(DSRT_ERROR_ARGUMENT,
                "scheduling_policy must be DSRT_SCHEDULE_FCFS (0) or "
                "DSRT_SCHEDULE_PRIORITY (1), got " +
                    std::to_string(o->scheduling_policy));
  c.scheduler.priority = o->scheduling_policy == DSRT_SCHEDULE_PRIORITY;
  if (o->num_pages > 0)
    c.scheduler.numPages = o->num_pages;
  else if (o->kv_cache_bytes > 0)
    c.scheduler.numPages =
        o->kv_cache_bytes / (kPageTokens * info.kv_cache_bytes_per_token);
  else
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_engine_create: give kv_cache_bytes or num_pages");
  if (o->speculative && *o->speculative) {
    std::string problem = parseSpeculative(o->speculative, c.speculativeTokens);
    if (problem.empty() && dsrt_model_mtp_hidden_size(model) <= 0)
      problem = "speculative " + std::string(o->speculative) + ": " +
                model->artifactPath +
                " has no MTP module (compile a config with "
                "num_nextn_predict_layers >= 1)";
    if (problem.empty() && model->gpu)
      problem = "speculative decoding runs on the cpu device only for now";
    if (problem.empty() && model->worldSize > 1)
      problem = "speculative decoding is not built for partitioned models "
                "(--tp/--ep) yet";
    if (!problem.empty())
      return fail(DSRT_ERROR_ARGUMENT, problem);
  }
  return DSRT_OK;
}

/// Which executor runs the steps, "step" or "session". An artifact with
/// @ragged_step runs each engine step as one call over one page pool; older
/// artifacts (and GPU models with fp8 caches) keep a session per running
/// request, whose caches are allocated lazily (calloc) and bounded together
/// by the pool.
/// DSRT_ENGINE_EXECUTOR=session|step picks one (tests compare them).
/// Drafting is built on the session executor only (for now).
dsrt_status chooseExecutor(dsrt_model *model, bool drafting,
                           std::string &which) {
  bool ranks = model->worldSize > 1;
  // On the GPU too (GpuStepExecutor): an H200 run matched the CPU step on
  // mixed batches and ran batch 64 at 10x the sessions' rate (bench/RESULTS.md,
  // "GPU"); fp8 caches and drafting keep the sessions.
  which =
      (StepExecutor::available(model) || GpuStepExecutor::available(model)) &&
              !drafting
          ? "step"
          : "session";
  if (const char *v = std::getenv("DSRT_ENGINE_EXECUTOR"); v && *v) {
    if (std::string(v) != "step" && std::string(v) != "session")
      return fail(DSRT_ERROR_ARGUMENT,
                  std::string("DSRT_ENGINE_EXECUTOR must be step or "
                              "session, got '") + v + "'");
    if (std::string(v) == "step" && !StepExecutor::available(model) &&
        !GpuStepExecutor::available(model))
      return fail(
          DSRT_ERROR_ARGUMENT,
          "DSRT_ENGINE_EXECUTOR=step: the artifact has no @ragged_step "
          "entry point this executor runs (fp8 caches, --tp/--ep artifacts "
          "and older artifacts have none)");
    if (std::string(v) == "step" && drafting)
      return fail(DSRT_ERROR_ARGUMENT,
                  "DSRT_ENGINE_EXECUTOR=step: speculative decoding runs on "
                  "the session executor only");
    which = v;
  }
  if (ranks && !StepExecutor::available(model))
    return fail(DSRT_ERROR_ARGUMENT,
                model->artifactPath +
                    ": the engine runs a partitioned model through "
                    "@ragged_step, which this artifact lacks for this "
                    "device (recompile it for the cpu with f32 caches)");
  if (ranks && which != "step")
    return fail(DSRT_ERROR_ARGUMENT,
                "DSRT_ENGINE_EXECUTOR=session: a partitioned model's ranks "
                "follow one @ragged_step per engine step");
  // Sessions copy and size latent rows; per-head K/V pages exist only in
  // the step's pool.
  if (which == "session" && model->manifest.perHeadStepCache())
    return fail(DSRT_ERROR_ARGUMENT,
                std::string("the artifact keeps per-head K/V pages "
                            "(--kv-layout=per-head): the engine runs it "
                            "on the step executor only") +
                    (drafting ? ", without speculative decoding" : ""));
  return DSRT_OK;
}

/// The executor `which` names with its page pool allocated, under a leader
/// that drives the other ranks for a partitioned model. `pagesGiven`: the
/// caller sized the pool in pages (a pool too large is then its mistake,
/// not the memory's).
dsrt_status makeExecutor(dsrt_model *model, const EngineConfig &c,
                         const std::string &which, bool drafting,
                         bool pagesGiven, std::unique_ptr<Executor> &ex) {
  StepExecutor *step = nullptr;
  GpuStepExecutor *gpuStep = nullptr;
  if (which == "step" && model->gpu) {
    ex = std::make_unique<GpuStepExecutor>(model, c.maxModelLen,
                                           c.scheduler.numPages);
    gpuStep = static_cast<GpuStepExecutor *>(ex.get());
  } else if (which == "step") {
    ex = std::make_unique<StepExecutor>(model, c.maxModelLen,
                                        c.scheduler.numPages);
    step = static_cast<StepExecutor *>(ex.get());
  } else {
    ex = std::make_unique<SessionExecutor>(model, c.maxModelLen,
                                           c.scheduler.numPages, drafting);
  }
  std::string problem = Engine::check(c, *ex);
  if (!problem.empty())
    return fail(pagesGiven ? DSRT_ERROR_ARGUMENT : DSRT_ERROR_OUT_OF_MEMORY,
                problem);
  if (step)
    if (std::string error = step->allocate(); !error.empty())
      return fail(DSRT_ERROR_OUT_OF_MEMORY, error);
  if (model->worldSize > 1) {
    auto leader = std::make_unique<LeaderExecutor>(
        model, std::unique_ptr<StepExecutor>(
                   static_cast<StepExecutor *>(ex.release())));
    if (dsrt_status st = leader->hello(c.scheduler.numPages, c.maxModelLen))
      return st;
    ex = std::move(leader);
  }
  if (gpuStep)
    if (std::string error = gpuStep->allocate(); !error.empty())
      return fail(DSRT_ERROR_DEVICE, error);
  return DSRT_OK;
}

/// The engine for `model` (for a partitioned model, rank 0's: it drives
/// every rank's step).
dsrt_status createEngine(dsrt_model *model, const dsrt_engine_options *o,
                         dsrt_engine **out) {
  EngineConfig c;
  if (dsrt_status st = engineConfig(model, o, c))
    return st;
  return guarded("creating the engine", [&] {
    bool drafting = c.speculativeTokens > 0;
    std::string which;
    if (dsrt_status st = chooseExecutor(model, drafting, which))
      return st;
    std::unique_ptr<Executor> ex;
    if (dsrt_status st =
            makeExecutor(model, c, which, drafting, o->num_pages > 0, ex))
      return st;
    auto e = std::make_unique<dsrt_engine>();
    e->engine = std::make_unique<Engine>(std::move(ex), c);
    *out = e.release();
    return DSRT_OK;
  });
}

} // namespace

extern "C" dsrt_status dsrt_engine_create(dsrt_model *model,
                                          const dsrt_engine_options *o,
                                          dsrt_engine **out) {
  if (!out)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_create: out is NULL");
  *out = nullptr;
  if (!model || !o)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_create: NULL argument");
  if (model->worldSize > 1 && model->rank != 0)
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_engine_create: rank " + std::to_string(model->rank) +
                    " of a partitioned model follows rank 0's engine "
                    "(dsrt_engine_follow); only rank 0 creates one");
  dsrt_status st = createEngine(model, o, out);
  // The other ranks wait for this engine's first message: tell them why
  // there will be none.
  if (st != DSRT_OK && model->worldSize > 1) {
    std::string why = dsrt_last_error();
    announceFailure(model, why);
    return fail(st, why);
  }
  return st;
}

extern "C" dsrt_status dsrt_engine_follow(dsrt_model *model) {
  return guarded("following rank 0's engine",
                 [&] { return followLeader(model); });
}

extern "C" void dsrt_engine_free(dsrt_engine *e) { delete e; }

extern "C" dsrt_status
dsrt_engine_add_request(dsrt_engine *e, const int32_t *prompt, int64_t n,
                        const dsrt_request_params *params,
                        dsrt_engine_callback callback, void *userData,
                        int64_t *outId) {
  if (outId)
    *outId = -1;
  if (!e || !params)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_add_request: NULL argument");
  return guarded("adding a request", [&] {
    std::string error;
    int64_t id = e->engine->add(prompt, n, *params, callback, userData, error);
    if (id < 0)
      return fail(DSRT_ERROR_ARGUMENT, error);
    if (outId)
      *outId = id;
    return DSRT_OK;
  });
}

extern "C" dsrt_status dsrt_engine_abort(dsrt_engine *e, int64_t id) {
  if (!e)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_abort: NULL engine");
  if (!e->engine->abort(id))
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_engine_abort: no request " + std::to_string(id));
  return DSRT_OK;
}

extern "C" dsrt_status dsrt_engine_step(dsrt_engine *e, int *outHasWork) {
  if (!e)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_step: NULL engine");
  if (e->engine->loopRunning())
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_engine_step: the engine's loop is running");
  return guarded("stepping the engine", [&] {
    bool hasWork = false;
    dsrt_status st = e->engine->step(hasWork);
    if (outHasWork)
      *outHasWork = hasWork;
    return st;
  });
}

extern "C" dsrt_status dsrt_engine_start(dsrt_engine *e) {
  if (!e)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_start: NULL engine");
  return e->engine->start();
}

extern "C" dsrt_status dsrt_engine_stop(dsrt_engine *e) {
  if (!e)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_stop: NULL engine");
  return e->engine->stop();
}

extern "C" dsrt_status dsrt_engine_wait_idle(dsrt_engine *e) {
  if (!e)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_wait_idle: NULL engine");
  return e->engine->waitIdle();
}

extern "C" dsrt_status dsrt_engine_stats_get(dsrt_engine *e,
                                             dsrt_engine_stats *out) {
  if (!e || !out)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_engine_stats_get: NULL argument");
  *out = e->engine->stats();
  return DSRT_OK;
}
