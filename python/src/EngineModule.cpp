//===- EngineModule.cpp - dsmlir's serving engine (dsrt_engine.h) ---------===//
//
// A module of its own (_dsengine, linked to libdsrt only) so the compiler's
// bindings in Module.cpp stay untouched. Steps run with the GIL released;
// the engine's callback only queues events in C++, and they become Python
// objects after the step, so no Python code runs on a step.
//
//===----------------------------------------------------------------------===//
#include "JsonGrammar.h"
#include "LoadModel.h"
#include "TextTokenizer.h"
#include "TokenMask.h"
#include "dsrt/dsrt.h"
#include "dsrt/dsrt_comm.h"
#include "dsrt/dsrt_engine.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>

namespace py = pybind11;

namespace {

/// Raises dsmlir.Error (registered by _dsmlir) with the runtime's message.
[[noreturn]] void raise(const std::string &message) {
  py::object error = py::module_::import("dsmlir._dsmlir").attr("Error");
  PyErr_SetString(error.ptr(), message.c_str());
  throw py::error_already_set();
}

void check(dsrt_status st) {
  if (st != DSRT_OK)
    raise(dsrt_last_error());
}

struct Event {
  int64_t id;
  int32_t token;
  int finish;
  double time;
  int64_t prefixHit;
  /// The final event's rows with return_logits, or a token event's row
  /// for a request that asked for its tokens' rows.
  std::vector<float> logits;
  int64_t rows = 0;
};

const char *reasonName(int r) {
  switch (r) {
  case DSRT_FINISH_STOP:
    return "stop";
  case DSRT_FINISH_LENGTH:
    return "length";
  case DSRT_FINISH_ABORT:
    return "abort";
  default:
    return nullptr;
  }
}

class PyEngine {
public:
  PyEngine(const std::string &artifact, const std::string &weights,
           const std::string &device, int64_t kvCacheBytes, int64_t numPages,
           int64_t maxNumSeqs, int64_t maxNumBatchedTokens, int64_t maxModelLen,
           bool prefixCaching, const std::string &speculative,
           bool priorityScheduling) {
    model = loadModel(artifact, weights, device, info, check);
    dsrt_model *m = model.get();
    // A partitioned model's other ranks follow rank 0's engine (follow()).
    rank = dsrt_model_rank(m);
    if (rank != 0)
      return;
    dsrt_engine_options o;
    dsrt_engine_options_default(&o);
    o.kv_cache_bytes = kvCacheBytes;
    o.num_pages = numPages;
    o.max_num_seqs = maxNumSeqs;
    o.max_num_batched_tokens = maxNumBatchedTokens;
    o.max_model_len = maxModelLen;
    o.enable_prefix_caching = prefixCaching;
    o.speculative = speculative.c_str();
    o.scheduling_policy =
        priorityScheduling ? DSRT_SCHEDULE_PRIORITY : DSRT_SCHEDULE_FCFS;
    dsrt_engine *e = nullptr;
    check(dsrt_engine_create(m, &o, &e));
    engine.reset(e);
  }

  int64_t add(const std::vector<int32_t> &prompt, int64_t maxTokens,
              float temperature, float topP, int32_t topK, uint64_t seed,
              const std::vector<int32_t> &stop, bool ignoreEos,
              const std::optional<std::vector<int32_t>> &force,
              bool returnLogits, bool tokenLogits, py::dict processing) {
    dsrt_request_params p;
    dsrt_request_params_default(&p);
    p.max_tokens = maxTokens;
    p.temperature = temperature;
    p.top_p = topP;
    p.top_k = topK;
    p.seed = seed;
    p.stop_token_ids = stop.data();
    p.num_stop_token_ids = int64_t(stop.size());
    p.ignore_eos = ignoreEos;
    if (force) {
      p.force_tokens = force->data();
      p.num_force_tokens = int64_t(force->size());
    }
    p.return_logits = returnLogits;
    // Logits processing (dsrt_request_params); the engine checks values.
    auto number = [&](const char *key, float fallback) {
      return processing.contains(key) ? processing[key].cast<float>()
                                      : fallback;
    };
    p.presence_penalty = number("presence_penalty", 0);
    p.frequency_penalty = number("frequency_penalty", 0);
    p.repetition_penalty = number("repetition_penalty", 1);
    p.min_p = number("min_p", 0);
    p.min_tokens = processing.contains("min_tokens")
                       ? processing["min_tokens"].cast<int64_t>()
                       : 0;
    p.prompt_logits = processing.contains("prompt_logits") &&
                      processing["prompt_logits"].cast<bool>();
    p.priority = processing.contains("priority")
                     ? processing["priority"].cast<int32_t>()
                     : 0;
    std::shared_ptr<dsserve::TokenConstraint> constraint =
        constraintFor(processing);
    if (constraint) {
      p.allowed_tokens = &PyEngine::allowedTokens;
      p.allowed_tokens_user = constraint.get();
    }
    std::vector<int32_t> biasIds;
    std::vector<float> biasValues;
    if (processing.contains("logit_bias"))
      for (auto item : processing["logit_bias"].cast<py::dict>()) {
        biasIds.push_back(item.first.cast<int32_t>());
        biasValues.push_back(item.second.cast<float>());
      }
    p.logit_bias_ids = biasIds.data();
    p.logit_bias_values = biasValues.data();
    p.num_logit_bias = int64_t(biasIds.size());
    int64_t id = -1;
    // Under the lock: the loop may not step yet, but the ids must be known
    // before the first event could arrive.
    std::lock_guard<std::mutex> lock(mutex);
    check(dsrt_engine_add_request(live(), prompt.data(), int64_t(prompt.size()),
                                  &p, &PyEngine::onEvent, this, &id));
    if (tokenLogits)
      wantRows.insert(id);
    if (constraint)
      constraints[id] = std::move(constraint);
    return id;
  }

  /// Structured outputs: processing["constraint"] = (kind, spec, tokenizer
  /// directory), kind one of json_schema (spec: its JSON text), regex,
  /// choice (spec: a list), json_object. Null without one.
  std::shared_ptr<dsserve::TokenConstraint> constraintFor(py::dict processing) {
    if (!processing.contains("constraint"))
      return nullptr;
    auto c = processing["constraint"].cast<py::tuple>();
    std::string kind = c[0].cast<std::string>(), error;
    if (!trie) { // the vocabulary's byte trie, once per engine
      maskTokenizer =
          dsserve::TextTokenizer::load(c[2].cast<std::string>(), error);
      if (!maskTokenizer)
        raise("structured outputs need the tokenizer: " + error);
      trie =
          std::make_shared<dsserve::VocabTrie>(*maskTokenizer, info.vocab_size);
    }
    std::shared_ptr<const dsserve::Grammar> g;
    if (kind == "json_schema") {
      auto schema = nlohmann::ordered_json::parse(c[1].cast<std::string>(),
                                                  nullptr, false);
      if (schema.is_discarded())
        raise("json_schema: not JSON");
      g = dsserve::Grammar::fromSchema(schema, error);
    } else if (kind == "regex") {
      g = dsserve::Grammar::regex(c[1].cast<std::string>(), error);
    } else if (kind == "choice") {
      auto choices = c[1].cast<std::vector<std::string>>();
      for (const std::string &s : choices)
        if (s.empty())
          raise("choice: the texts must not be empty");
      if (choices.empty())
        raise("choice: give at least one text");
      g = dsserve::Grammar::choice(choices);
    } else if (kind == "json_object") {
      g = dsserve::Grammar::anyObject();
    }
    if (!g)
      raise(kind + ": " + error);
    return std::make_shared<dsserve::GrammarConstraint>(g, trie,
                                                        info.eos_token_id);
  }

  static void allowedTokens(void *user, const int32_t *output, int64_t n,
                            uint8_t *mask, int64_t vocab) {
    static_cast<dsserve::TokenConstraint *>(user)->allowed(output, n, mask,
                                                           vocab);
  }

  void abort(int64_t id) { check(dsrt_engine_abort(live(), id)); }

  /// Ranks other than 0: runs rank 0's steps until it closes its engine.
  void follow() {
    if (!model)
      raise("the engine is closed");
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_engine_follow(model.get());
    }
    check(st);
  }

  /// Frees the engine (rank 0: the followers return) and the model.
  void close() {
    engine.reset();
    model.reset();
  }

  int getRank() const { return rank; }
  int worldSize() const {
    return model ? dsrt_model_world_size(model.get()) : 1;
  }

  /// One step; (has_work, [(id, token, finish_reason, time, prefix_hit,
  /// logits or None), ...]); a prompt-rows event (prompt_logits) is (id,
  /// -2, None, time, position of its first row, rows).
  py::tuple step() {
    int hasWork = 0;
    dsrt_status st;
    dsrt_engine *e = live();
    {
      py::gil_scoped_release release;
      st = dsrt_engine_step(e, &hasWork);
    }
    check(st);
    std::vector<Event> events;
    {
      std::lock_guard<std::mutex> lock(mutex);
      events.swap(pending);
    }
    py::list out;
    for (Event &e : events) {
      py::object logits = py::none();
      if (e.rows) {
        py::array_t<float> a({e.rows, info.vocab_size});
        std::copy(e.logits.begin(), e.logits.end(), a.mutable_data());
        logits = a;
      }
      const char *reason = reasonName(e.finish);
      out.append(py::make_tuple(e.id, e.token,
                                reason ? py::object(py::str(reason))
                                       : py::object(py::none()),
                                e.time, e.prefixHit, logits));
    }
    return py::make_tuple(bool(hasWork), out);
  }

  py::dict stats() {
    dsrt_engine_stats s;
    check(dsrt_engine_stats_get(live(), &s));
    py::dict d;
    d["running"] = s.running;
    d["waiting"] = s.waiting;
    d["pages_total"] = s.pages_total;
    d["pages_used"] = s.pages_used;
    d["pages_free"] = s.pages_free;
    d["pages_cached"] = s.pages_cached;
    d["page_tokens"] = s.page_tokens;
    d["preemptions"] = s.preemptions;
    d["prefix_query_tokens"] = s.prefix_query_tokens;
    d["prefix_hit_tokens"] = s.prefix_hit_tokens;
    d["prefix_copied_tokens"] = s.prefix_copied_tokens;
    d["step_calls"] = s.step_calls;
    d["step_segments"] = s.step_segments;
    d["step_naive_segments"] = s.step_naive_segments;
    d["step_tokens"] = s.step_tokens;
    d["step_naive_tokens"] = s.step_naive_tokens;
    d["step_head_matmul_rows"] = s.step_head_matmul_rows;
    d["prefix_recomputed_tokens"] = s.prefix_recomputed_tokens;
    d["steps"] = s.steps;
    d["scheduled_tokens"] = s.scheduled_tokens;
    d["last_step_tokens"] = s.last_step_tokens;
    d["tokens_per_step"] =
        s.steps ? double(s.scheduled_tokens) / double(s.steps) : 0.0;
    d["finished_requests"] = s.finished_requests;
    d["max_model_len"] = s.max_model_len;
    d["speculative_tokens"] = s.speculative_tokens;
    d["spec_rounds"] = s.spec_rounds;
    d["spec_draft_tokens"] = s.spec_draft_tokens;
    d["spec_accepted_tokens"] = s.spec_accepted_tokens;
    d["spec_acceptance_rate"] =
        s.spec_draft_tokens
            ? double(s.spec_accepted_tokens) / double(s.spec_draft_tokens)
            : 0.0;
    d["spec_mean_accepted_length"] =
        s.spec_rounds
            ? 1.0 + double(s.spec_accepted_tokens) / double(s.spec_rounds)
            : 0.0;
    return d;
  }

  py::dict modelInfo() const {
    py::dict d;
    d["vocab_size"] = info.vocab_size;
    d["kv_cache_bytes_per_token"] = info.kv_cache_bytes_per_token;
    d["max_position_embeddings"] = info.max_position_embeddings;
    d["eos_token_id"] = info.eos_token_id;
    return d;
  }

private:
  dsrt_engine *live() {
    if (!engine && rank != 0)
      raise("rank " + std::to_string(rank) +
            " of a partitioned model follows rank 0's engine: call follow()");
    if (!engine)
      raise("the engine is closed");
    return engine.get();
  }

  static void onEvent(void *user, const dsrt_engine_event *e) {
    auto *self = static_cast<PyEngine *>(user);
    Event ev{e->request_id,
             e->token,
             int(e->finish_reason),
             std::chrono::duration<double>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count(),
             e->prefix_hit_tokens,
             {},
             0};
    std::lock_guard<std::mutex> lock(self->mutex);
    if (e->token < 0 && e->finish_reason == DSRT_FINISH_NONE) {
      // Prompt rows (prompt_logits): token -2, the first row's position in
      // the prefix-hit slot.
      ev.token = -2;
      ev.prefixHit = e->index;
      ev.rows = e->num_logits_rows;
      ev.logits.assign(e->logits,
                       e->logits + e->num_logits_rows * e->vocab_size);
      self->pending.push_back(std::move(ev));
      return;
    }
    if (e->logits && (e->token < 0 || self->wantRows.count(e->request_id))) {
      ev.rows = e->num_logits_rows;
      ev.logits.assign(e->logits,
                       e->logits + e->num_logits_rows * e->vocab_size);
    }
    if (e->token < 0) { // the final event: nothing more asks its mask
      self->wantRows.erase(e->request_id);
      self->constraints.erase(e->request_id);
    }
    self->pending.push_back(std::move(ev));
  }

  struct EngineFree {
    void operator()(dsrt_engine *e) const { dsrt_engine_free(e); }
  };
  std::shared_ptr<dsrt_model> model;
  int rank = 0;
  dsrt_model_info info{};
  // Structured outputs: the tokenizer's byte trie, and each constrained
  // request's constraint until its final event (before `engine`, which is
  // destroyed first).
  std::unique_ptr<dsserve::TextTokenizer> maskTokenizer;
  std::shared_ptr<dsserve::VocabTrie> trie;
  std::map<int64_t, std::shared_ptr<dsserve::TokenConstraint>> constraints;
  std::mutex mutex;
  std::vector<Event> pending;
  std::unordered_set<int64_t> wantRows;
  // Last: destroyed first, before the model it runs and the event queue.
  std::unique_ptr<dsrt_engine, EngineFree> engine;
};

} // namespace

PYBIND11_MODULE(_dsengine, m) {
  m.doc() = "ds: the serving engine (native part)";
  py::class_<PyEngine>(m, "Engine")
      .def(py::init<const std::string &, const std::string &,
                    const std::string &, int64_t, int64_t, int64_t, int64_t,
                    int64_t, bool, const std::string &, bool>())
      .def("add", &PyEngine::add, py::arg("prompt"), py::arg("max_tokens"),
           py::arg("temperature"), py::arg("top_p"), py::arg("top_k"),
           py::arg("seed"), py::arg("stop"), py::arg("ignore_eos"),
           py::arg("force"), py::arg("return_logits"), py::arg("token_logits"),
           py::arg("processing") = py::dict())
      .def("abort", &PyEngine::abort)
      .def("step", &PyEngine::step)
      .def("stats", &PyEngine::stats)
      .def("follow", &PyEngine::follow)
      .def("close", &PyEngine::close)
      .def_property_readonly("rank", &PyEngine::getRank)
      .def_property_readonly("world_size", &PyEngine::worldSize)
      .def_property_readonly("info", &PyEngine::modelInfo);
  m.def("page_tokens", [] { return int64_t(DSRT_ENGINE_PAGE_TOKENS); });
}
