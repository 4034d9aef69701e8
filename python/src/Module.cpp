//===- Module.cpp - the dsmlir Python extension ---------------------------===//
//
// Compile (ds::compile, the same driver as ds-compile) and run (the dsrt C
// API, the same calls as ds-run). Failures raise dsmlir.Error with the
// one-line messages the tools print; the GIL is released while compiling
// and running.
//
//===----------------------------------------------------------------------===//
#include <cstdlib>
#include "ds/Driver/Driver.h"
#include "ds/Pipelines/Pipelines.h"
#include "LoadModel.h"
#include "dsrt/dsrt.h"
#include "dsrt/dsrt_mtp.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

namespace py = pybind11;

namespace {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(dsrt_status st) {
  if (st != DSRT_OK)
    throw Error(dsrt_last_error());
}

std::string joinErrors(const std::vector<std::string> &errors) {
  std::string out;
  for (const std::string &e : errors)
    out += (out.empty() ? "" : "\n") + e;
  return out.empty() ? "compilation failed" : out;
}

mlir::ds::CompileOptions options(const std::string &input,
                                 const std::string &output,
                                 const std::string &emit,
                                 const std::string &target,
                                 const std::string &dtype, bool checkWeights,
                                 bool traceRouting,
                                 const std::string &gpuArch) {
  mlir::ds::CompileOptions o;
  o.gpuArch = gpuArch;
  if (const char *home = std::getenv("CUDA_HOME"); home && *home)
    o.cudaPath = home;
  o.input = input;
  o.output = output;
  o.emit = emit;
  o.target = target;
  o.dtype = dtype;
  o.checkWeights = checkWeights;
  o.traceRouting = traceRouting;
  return o;
}

py::object compile(const std::string &input, const std::string &output,
                   const std::string &emit, const std::string &target,
                   const std::string &dtype, bool checkWeights,
                   bool traceRouting, const std::string &gpuArch,
                   const std::string &kvLayout) {
  auto o = options(input, output, emit, target, dtype, checkWeights,
                   traceRouting, gpuArch);
  o.kvLayout = kvLayout;
  std::vector<std::string> errors;
  std::string emitted;
  bool ok;
  {
    py::gil_scoped_release release;
    ok = mlir::ds::compile(o, {}, errors, &emitted);
  }
  if (!ok)
    throw Error(joinErrors(errors));
  if (!emit.empty())
    return py::str(emitted);
  return py::none();
}

std::vector<std::pair<std::string, std::string>>
compileStages(const std::string &input, const std::string &target,
              const std::string &dtype, bool checkWeights,
              const std::string &gpuArch) {
  auto o = options(input, "", "llvm", target, dtype, checkWeights, false,
                   gpuArch);
  std::vector<std::pair<std::string, std::string>> stages;
  mlir::ds::CompileHooks hooks;
  hooks.afterStage = [&](int, llvm::StringRef stage, mlir::ModuleOp m) {
    stages.emplace_back(stage.str(), mlir::ds::printModule(m));
  };
  std::vector<std::string> errors;
  bool ok;
  {
    py::gil_scoped_release release;
    ok = mlir::ds::compile(o, hooks, errors, nullptr);
  }
  if (!ok)
    throw Error(joinErrors(errors));
  return stages;
}

class Model;

class Session {
public:
  Session(std::shared_ptr<dsrt_model> model, int64_t capacity)
      : model(std::move(model)) {
    dsrt_session *s = nullptr;
    check(dsrt_session_create(this->model.get(), capacity, &s));
    session.reset(s, dsrt_session_free);
    check(dsrt_model_info_get(this->model.get(), &info));
  }

  py::array_t<float> prefill(const std::vector<int32_t> &tokens) {
    py::array_t<float> out({int64_t(tokens.size()), info.vocab_size});
    float *dst = out.mutable_data();
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_session_prefill(session.get(), tokens.data(),
                                int64_t(tokens.size()), dst);
    }
    check(st);
    return out;
  }

  py::array_t<float> decode(int32_t token) {
    py::array_t<float> out(info.vocab_size);
    float *dst = out.mutable_data();
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_session_decode(session.get(), token, dst);
    }
    check(st);
    return out;
  }

  /// (logits [n, vocab], hidden [n, D]) of @prefill_hidden (dsrt_mtp.h).
  py::tuple prefillHidden(const std::vector<int32_t> &tokens) {
    int64_t n = int64_t(tokens.size());
    int64_t d = dsrt_model_mtp_hidden_size(model.get());
    py::array_t<float> logits({n, info.vocab_size});
    py::array_t<float> hidden({n, d > 0 ? d : 1});
    float *l = logits.mutable_data(), *h = hidden.mutable_data();
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_session_prefill_hidden(session.get(), tokens.data(), n, l, h);
    }
    check(st);
    return py::make_tuple(logits, hidden);
  }

  /// Draft logits [n, vocab] of the MTP module and its output states
  /// [n, hidden] (dsrt_mtp.h).
  py::tuple
  draft(py::array_t<float, py::array::c_style | py::array::forcecast> hidden,
        const std::vector<int32_t> &nextTokens) {
    int64_t n = int64_t(nextTokens.size());
    int64_t d = dsrt_model_mtp_hidden_size(model.get());
    if (hidden.ndim() != 2 || hidden.shape(0) != n || hidden.shape(1) != d)
      throw std::invalid_argument("hidden must be [" + std::to_string(n) +
                                  ", " + std::to_string(d) +
                                  "] (one row per next token)");
    py::array_t<float> out({n, info.vocab_size});
    py::array_t<float> outHidden({n, d});
    const float *h = hidden.data();
    float *dst = out.mutable_data(), *dstHidden = outHidden.mutable_data();
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_session_draft(session.get(), h, nextTokens.data(), n, dst,
                              dstHidden);
    }
    check(st);
    return py::make_tuple(out, outHidden);
  }

  int64_t draftPosition() const {
    return dsrt_session_draft_position(session.get());
  }

  int64_t position() const { return dsrt_session_position(session.get()); }
  void reset() { dsrt_session_reset(session.get()); }

  py::dict generate(const std::vector<int32_t> &prompt, int64_t maxNew,
                    float temperature, float topP, uint64_t seed,
                    std::optional<std::vector<int32_t>> force, int32_t topK) {
    dsrt_generate_options o = {};
    if (force) {
      o.force_tokens = force->data();
      o.num_force_tokens = int64_t(force->size());
      if (maxNew < 0)
        maxNew = int64_t(force->size());
    }
    if (maxNew < 0)
      maxNew = 16;
    o.max_new_tokens = maxNew;
    o.temperature = temperature;
    o.top_p = topP;
    o.top_k = topK;
    o.seed = seed;
    int64_t vocab = info.vocab_size;
    std::vector<float> logits(size_t((int64_t(prompt.size()) + maxNew) * vocab));
    std::vector<int32_t> tokens(static_cast<size_t>(maxNew));
    int64_t count = 0;
    dsrt_stats stats;
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_generate(session.get(), prompt.data(), int64_t(prompt.size()),
                         &o, tokens.data(), &count, logits.data(), &stats);
    }
    check(st);
    tokens.resize(size_t(count));
    int64_t rows = int64_t(prompt.size()) + count;
    py::array_t<float> arr({rows, vocab});
    std::copy(logits.begin(), logits.begin() + rows * vocab,
              arr.mutable_data());
    py::dict s;
    s["prefill_tokens"] = stats.prefill_tokens;
    s["decode_tokens"] = stats.decode_tokens;
    s["prefill_seconds"] = stats.prefill_seconds;
    s["decode_seconds"] = stats.decode_seconds;
    s["decode_tokens_per_second"] = stats.decode_tokens_per_second;
    s["kv_cache_bytes_per_token"] = stats.kv_cache_bytes_per_token;
    s["weights_bytes"] = stats.weights_bytes;
    s["peak_rss_bytes"] = stats.peak_rss_bytes;
    s["activation_bytes"] = stats.activation_bytes;
    s["decode_allocations"] = stats.decode_allocations;
    // ds-run's stats: the checkpoint's pages touched, those in 2 MiB pages.
    dsrt_weight_pages pages;
    check(dsrt_model_weight_pages(model.get(), &pages));
    s["weights_resident_bytes"] = pages.resident_bytes;
    s["weights_huge_page_bytes"] = pages.huge_page_bytes;
    py::dict result;
    result["tokens"] = tokens;
    result["logits"] = arr;
    result["stats"] = s;
    return result;
  }

private:
  std::shared_ptr<dsrt_model> model; // keeps the model alive
  std::shared_ptr<dsrt_session> session;
  dsrt_model_info info;
};

class Model {
public:
  Model(const std::string &artifact, const std::string &weights,
        const std::string &device) {
    model = loadModel(artifact, weights, device, info, check);
  }

  py::dict infoDict() const {
    py::dict d;
    d["vocab_size"] = info.vocab_size;
    d["num_layers"] = info.num_layers;
    d["cache_width"] = info.cache_width;
    d["kv_cache_bytes_per_token"] = info.kv_cache_bytes_per_token;
    d["weights_bytes"] = info.weights_bytes;
    d["max_position_embeddings"] = info.max_position_embeddings;
    d["bos_token_id"] = info.bos_token_id;
    d["eos_token_id"] = info.eos_token_id;
    d["mtp_hidden_size"] = dsrt_model_mtp_hidden_size(model.get());
    return d;
  }

  void checkWeights() { check(dsrt_model_check_weights(model.get())); }

  Session session(std::optional<int64_t> capacity) {
    return Session(model, capacity ? *capacity
                                   : std::min<int64_t>(
                                         info.max_position_embeddings, 4096));
  }

  std::string routingTrace() const {
    return dsrt_model_routing_trace(model.get());
  }

  py::dict weightPages() const {
    dsrt_weight_pages p;
    check(dsrt_model_weight_pages(model.get(), &p));
    py::dict d;
    d["mapped_bytes"] = p.mapped_bytes;
    d["resident_bytes"] = p.resident_bytes;
    d["huge_page_bytes"] = p.huge_page_bytes;
    d["note"] = std::string(p.note);
    return d;
  }

private:
  std::shared_ptr<dsrt_model> model;
  dsrt_model_info info;
};

} // namespace

void registerTokenizer(py::module &m); // Tokenizer.cpp

PYBIND11_MODULE(_dsmlir, m) {
  m.doc() = "ds: compile and run DeepSeek-style models (native part)";
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  m.def("compile", &compile, py::arg("input"), py::arg("output") = "",
        py::arg("emit") = "", py::arg("target") = "cpu",
        py::arg("dtype") = "f32", py::arg("check_weights") = true,
        py::arg("trace_routing") = false, py::arg("gpu_arch") = "sm_90",
        py::arg("kv_layout") = "latent");
  m.def("compile_stages", &compileStages, py::arg("input"),
        py::arg("target") = "cpu", py::arg("dtype") = "f32",
        py::arg("check_weights") = true, py::arg("gpu_arch") = "sm_90");
  m.def(
      "stage_names",
      [](const std::string &target) {
        return mlir::ds::getStageNames(
            mlir::ds::parseTarget(target).value_or(mlir::ds::Target::CPU));
      },
      py::arg("target") = "cpu");

  py::class_<Session>(m, "Session")
      .def("prefill", &Session::prefill, py::arg("tokens"))
      .def("decode", &Session::decode, py::arg("token"))
      .def("prefill_hidden", &Session::prefillHidden, py::arg("tokens"))
      .def("draft", &Session::draft, py::arg("hidden"), py::arg("next_tokens"))
      .def_property_readonly("draft_position", &Session::draftPosition)
      .def_property_readonly("position", &Session::position)
      .def("reset", &Session::reset)
      .def("generate", &Session::generate, py::arg("prompt"),
           py::arg("max_new_tokens") = -1, py::arg("temperature") = 0.0f,
           py::arg("top_p") = 1.0f, py::arg("seed") = 0,
           py::arg("force_tokens") = py::none(), py::arg("top_k") = 0);

  py::class_<Model>(m, "Model")
      .def(py::init<const std::string &, const std::string &,
                    const std::string &>(),
           py::arg("artifact"), py::arg("weights"), py::arg("device") = "cpu")
      .def_property_readonly("info", &Model::infoDict)
      .def("check_weights", &Model::checkWeights)
      .def("session", &Model::session, py::arg("capacity") = py::none())
      .def("routing_trace", &Model::routingTrace)
      .def("weight_pages", &Model::weightPages);
  registerTokenizer(m);
}
