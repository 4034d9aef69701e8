//===- Driver.cpp - checkpoint | .mlir -> IR stages -> artifact -----------===//
#include "ds/Driver/Driver.h"
#include "ds/DSDialect.h"
#include "ds/Import/CheckpointTypes.h"
#include "ds/Import/ImportModel.h"
#include "ds/Import/ModelConfig.h"
#include "ds/InitAll.h"
#include "ds/Support/NestingGuard.h"
#include "ds/Pipelines/Pipelines.h"
#include "ds/Target/Artifact.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

#include <chrono>

using namespace mlir;
using namespace mlir::ds;

void mlir::ds::prepareContext(MLIRContext &ctx) {
  DialectRegistry registry;
  registerAllDialects(registry); // extensions and translations included
  ctx.appendDialectRegistry(registry);
  ctx.loadAllAvailableDialects();
}

std::string mlir::ds::printModule(ModuleOp m) {
  std::string text;
  llvm::raw_string_ostream os(text);
  m.print(os);
  os << "\n";
  return text;
}

namespace {

/// Collects diagnostics as "file:line:col: error: message" lines.
struct DiagnosticCollector {
  DiagnosticCollector(MLIRContext &ctx, std::vector<std::string> &out)
      : ctx(ctx), out(out) {
    id = ctx.getDiagEngine().registerHandler([this](Diagnostic &d) {
      if (d.getSeverity() == DiagnosticSeverity::Remark) {
        llvm::errs() << "remark: " << d.str() << "\n";
        return success();
      }
      if (d.getSeverity() != DiagnosticSeverity::Error)
        return success();
      std::string line;
      llvm::raw_string_ostream os(line);
      if (auto loc = dyn_cast<FileLineColLoc>(d.getLocation()))
        os << loc.getFilename() << ":" << loc.getLine() << ":"
           << loc.getColumn() << ": ";
      os << "error: " << d.str();
      this->out.push_back(line);
      return success();
    });
  }
  ~DiagnosticCollector() { ctx.getDiagEngine().eraseHandler(id); }
  MLIRContext &ctx;
  std::vector<std::string> &out;
  DiagnosticEngine::HandlerID id;
};

OwningOpRef<ModuleOp> importCheckpoint(MLIRContext &ctx,
                                       const CompileOptions &o,
                                       std::vector<std::string> &errors) {
  bool isDir = llvm::sys::fs::is_directory(o.input);
  std::string configPath = o.input;
  if (isDir) {
    llvm::SmallString<256> p(o.input);
    llvm::sys::path::append(p, "config.json");
    configPath = std::string(p);
  }
  auto start = std::chrono::steady_clock::now();
  llvm::Expected<ModelConfig> cfg = readModelConfig(configPath);
  if (!cfg) {
    errors.push_back(llvm::toString(cfg.takeError()));
    return nullptr;
  }
  ImportOptions opts;
  opts.cacheElementType = o.dtype == "bf16"  ? Type(BFloat16Type::get(&ctx))
                          : o.dtype == "fp8" ? Type(Float8E4M3FNType::get(&ctx))
                                             : Type(Float32Type::get(&ctx));
  if (o.dtype == "fp8" && cfg->kvLoraRank % opts.cacheScaleGroup) {
    errors.push_back(
        "--kv-dtype fp8: kv_lora_rank (" + std::to_string(cfg->kvLoraRank) +
        ") must be a multiple of " + std::to_string(opts.cacheScaleGroup) +
        " (one f32 scale per 128 latent values) (" + configPath + ")");
    return nullptr;
  }
  // The ragged step is lowered for both targets (on cuda its paged
  // kernels are hand-mapped: KernelsToGPU/PagedAttention.cpp, without the
  // fp8 cache's decode). Partitioned (--tp/--ep) CPU artifacts have it: the
  // paged ds.mla splits by heads like the contiguous one, the latent cache
  // stays whole per rank; their fp8 pages and cuda's --tp/--ep step are not
  // built yet.
  bool whole = o.tp == 1 && o.ep == 1;
  opts.stepEntry = o.dtype == "fp8" ? o.target == "cpu" && whole
                                    : o.target == "cpu" || whole;
  opts.perHeadKVCache = o.kvLayout == "per-head";
  std::unique_ptr<CheckpointTypes> ckpt;
  if (isDir && o.checkWeights) {
    std::string err;
    ckpt = CheckpointTypes::openIfPresent(o.input, &ctx, err);
    if (!err.empty()) {
      errors.push_back(err);
      return nullptr;
    }
    if (ckpt)
      opts.checkpointType = [&](StringRef name) { return ckpt->typeOf(name); };
  }
  OwningOpRef<ModuleOp> module = importModel(&ctx, *cfg, opts);
  if (failed(verify(*module))) {
    errors.push_back("internal error: the imported IR does not verify (" +
                     configPath + ")");
    return nullptr;
  }
  if (ckpt) {
    std::vector<std::string> problems =
        ckpt->validate(collectRequiredWeights(*module));
    if (!problems.empty()) {
      errors.insert(errors.end(), problems.begin(), problems.end());
      return nullptr;
    }
  }
  if (o.verbose) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             start)
                   .count();
    llvm::errs() << "imported " << cfg->numHiddenLayers << " layers from "
                 << configPath << " in " << llvm::format("%.2f", s) << " s"
                 << (ckpt ? ", weights checked" : "") << "\n";
  }
  return module;
}

OwningOpRef<ModuleOp> parseMlir(MLIRContext &ctx, const std::string &path,
                                std::vector<std::string> &errors) {
  std::string err;
  auto file = openInputFile(path, &err);
  if (!file) {
    errors.push_back(err);
    return nullptr;
  }
  std::string nesting = checkNesting(file->getBuffer());
  if (!nesting.empty()) {
    errors.push_back("input '" + path + "': " + nesting);
    return nullptr;
  }
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sm, &ctx);
  if (!module)
    errors.push_back("cannot parse '" + path + "' as ds IR");
  return module;
}

/// The nvvm stage's gpu.modules through ptxas-free serialisation (PTX text),
/// each printed under a header naming its module.
bool emitPTX(MLIRContext &ctx, ModuleOp module, const PipelineOptions &opts,
             std::string &out, std::vector<std::string> &errors) {
  OwningOpRef<ModuleOp> copy = module.clone();
  PassManager pm(&ctx);
  addGpuBinaryPass(pm, opts, "isa");
  if (failed(pm.run(*copy)))
    return false;
  llvm::raw_string_ostream os(out);
  copy->walk([&](gpu::BinaryOp bin) {
    for (Attribute a : bin.getObjects()) {
      auto obj = cast<gpu::ObjectAttr>(a);
      os << "// ---- gpu.module @" << bin.getName() << " ("
         << obj.getTarget() << ")\n"
         << obj.getObject().getValue() << "\n";
    }
  });
  return true;
}

/// ds-plan-activations' result per entry point: into the manifest, and to
/// stderr when asked.
void recordActivationPlan(ModuleOp module, ManifestInputs &manifest,
                          bool report) {
  for (auto fn : module.getOps<func::FuncOp>()) {
    auto plan = fn->getAttrOfType<DenseI64ArrayAttr>("ds.activation_bytes");
    if (!fn->hasAttr("ds.entry_point"))
      continue;
    if (!plan || plan.size() != 2) {
      if (report)
        llvm::errs() << "activations of @" << fn.getName()
                     << ": not planned (sizes not affine in the token "
                        "count), allocated per call\n";
      continue;
    }
    int64_t perToken = plan[0], fixed = plan[1];
    manifest.activationBytes[fn.getName().str()] = {perToken, fixed};
    if (report)
      llvm::errs() << "activations of @" << fn.getName() << ": "
                   << perToken << " bytes per token + " << fixed
                   << " (one token: " << perToken + fixed << " bytes)\n";
  }
}

/// --kv-layout: "" or why the options cannot build it. The per-head layout
/// lives in @ragged_step only, which exists for the cpu target, unpartitioned,
/// with f32/bf16 caches.
std::string checkKVLayout(const CompileOptions &o) {
  if (o.kvLayout == "latent")
    return "";
  if (o.kvLayout != "per-head")
    return "--kv-layout: expected latent or per-head, got '" + o.kvLayout + "'";
  if (o.dtype == "fp8")
    return "--kv-layout=per-head: fp8 caches are not supported (the fp8 "
           "codec is the latent layout's); use --kv-dtype f32 or bf16";
  if (o.target != "cpu")
    return "--kv-layout=per-head: the cpu target only (its pages exist in "
           "@ragged_step, which the " +
           o.target + " target does not build)";
  if (o.tp > 1 || o.ep > 1)
    return "--kv-layout=per-head: not with --tp/--ep (partitioned artifacts "
           "have no @ragged_step)";
  if (StringRef(o.input).ends_with(".mlir"))
    return "--kv-layout=per-head: applies when importing a checkpoint (a "
           ".mlir input spells its cache types itself)";
  return "";
}

/// The first problem with `o` as options, or "" (checked before the input
/// is read). `stageNames`: the stages --emit may name.
std::string checkOptions(const CompileOptions &o,
                         ArrayRef<std::string> stageNames) {
  Target target = parseTarget(o.target).value_or(Target::CPU);
  if (!o.emit.empty() && !llvm::is_contained(stageNames, o.emit))
    return "--emit=" + o.emit +
           ": unknown stage (stages: " + llvm::join(stageNames, ", ") + ")";
  if (o.mlaForm != "auto" && o.mlaForm != "absorbed" && o.mlaForm != "naive")
    return "--mla-form: expected auto, absorbed or naive, got '" + o.mlaForm +
           "'";
  if (o.naiveMinTokens < -1)
    return "--mla-naive-min-tokens: expected -1 (cost model) or a "
           "token count >= 0, got " +
           std::to_string(o.naiveMinTokens);
  if (o.attentionChunk < 1)
    return "--attention-chunk: must be positive, got " +
           std::to_string(o.attentionChunk);
  if (!o.testParallelOrder.empty() && o.testParallelOrder != "reverse" &&
      o.testParallelOrder != "rotate")
    return "--test-parallel-order: expected reverse or rotate, got '" +
           o.testParallelOrder + "'";
  if (!o.testParallelOrder.empty() && o.target != "cpu")
    return "--test-parallel-order: the cpu target only";
  if (o.dtype != "f32" && o.dtype != "bf16" && o.dtype != "fp8")
    return "--kv-dtype: expected f32, bf16 or fp8, got '" + o.dtype + "'";
  if (!parseTarget(o.target))
    return "--target: expected cpu or cuda, got '" + o.target + "'";
  if (std::string problem = checkKVLayout(o); !problem.empty())
    return problem;
  if (target == Target::CUDA) {
    // ptxas of CUDA 13 knows sm_75 and later; MLIR's default (sm_50) fails.
    StringRef arch(o.gpuArch);
    unsigned sm = 0;
    if (!arch.consume_front("sm_") || arch.getAsInteger(10, sm) || sm < 75)
      return "--gpu-arch: expected sm_75 or later (sm_80 A100, sm_90 "
             "H100/H200), got '" +
             o.gpuArch + "'";
    std::string ptxas = o.cudaPath + "/bin/ptxas";
    // The llvm stage (and so the artifact) serialises with ptxas.
    if (o.emit.empty() || o.emit == "llvm")
      if (!llvm::sys::fs::can_execute(ptxas))
        return "--target cuda: no ptxas at '" + ptxas +
               "' (install the CUDA toolkit or pass --cuda-path)";
  }
  bool parallel = o.tp > 1 || o.ep > 1;
  if (o.tp < 1 || o.ep < 1)
    return "--tp and --ep: must be positive, got " + std::to_string(o.tp) +
           " and " + std::to_string(o.ep);
  if (!parallel && (o.emit == "sharded" || o.emit == "partitioned"))
    return "--emit=" + o.emit + ": needs --tp or --ep above 1";
  if (parallel && target == Target::CUDA)
    return "--tp/--ep: the cuda target is not partitioned yet (the "
           "communicator's NCCL backend is; the compiler's collectives "
           "are host calls)";
  if (o.dpAttention && (o.ep < 2 || o.tp != 1))
    return "--dp-attention: needs --ep above 1 and no --tp (attention "
           "whole on every rank), got --tp " +
           std::to_string(o.tp) + " --ep " + std::to_string(o.ep);
  if (o.plan && !o.emit.empty())
    return "--plan prints a report: it takes no --emit";
  if (o.emit.empty() && !o.plan && (o.output.empty() || o.output == "-"))
    return "-o FILE is required to write an artifact (or pass "
           "--emit=<stage>)";
  if (!llvm::sys::fs::exists(o.input))
    return "input '" + o.input + "' does not exist";
  return "";
}

/// What the manifest needs from the model level, read before it is lowered.
struct ModelLevel {
  ManifestInputs manifest;
  /// The session's cache (the main model's: @draft has its own).
  LatentCacheType cacheType;
  int64_t kvLoraRank = 0, ropeDim = 0;
};

/// Fills `m` from `module`; "" or why the module cannot become an artifact.
std::string readModelLevel(ModuleOp module, const CompileOptions &o,
                           Target target, ModelLevel &m) {
  ManifestInputs &manifest = m.manifest;
  LatentCacheType &cacheType = m.cacheType;
  manifest.target = targetName(target).str();
  if (target == Target::CUDA)
    manifest.gpuArch = o.gpuArch;
  manifest.dtype = o.dtype;
  manifest.hostCpu = hostCpuFor(o.target);
  manifest.weights = collectRequiredWeights(module);
  // cuBLAS's bf16 GEMMs and the runtime's f32 -> bf16 kernel need sm_80.
  unsigned smNumber = 0;
  if (target == Target::CUDA &&
      !StringRef(o.gpuArch).drop_front(3).getAsInteger(10, smNumber) &&
      smNumber < 80)
    for (const RequiredWeight &w : manifest.weights)
      if (w.elementType && w.elementType.isBF16())
        return "--gpu-arch " + o.gpuArch + ": the checkpoint's bf16 weights (" +
               w.name +
               ", ...) need sm_80 or later (bf16 GEMMs); convert them to f32 "
               "or target sm_80";
  for (auto fn : module.getOps<func::FuncOp>())
    for (Type t : fn.getArgumentTypes())
      if (auto c = dyn_cast<LatentCacheType>(t)) {
        // The session cache is the main model's (@draft has its own).
        if (!cacheType || fn.getName() == "prefill")
          cacheType = c;
        manifest.entryPoints.push_back(fn.getName().str());
        break;
      } else if (isa<PagedLatentCacheType>(t)) {
        manifest.entryPoints.push_back(fn.getName().str());
        break;
      } else if (auto kv = dyn_cast<PagedKVCacheType>(t)) {
        manifest.stepCacheWidth = kv.getRowWidth();
        manifest.entryPoints.push_back(fn.getName().str());
        break;
      }
  if (auto draft = module.lookupSymbol<func::FuncOp>("draft");
      draft && draft.getNumArguments() == 4)
    if (auto c = dyn_cast<LatentCacheType>(draft.getArgumentTypes()[2]))
      if (auto h = dyn_cast<RankedTensorType>(draft.getArgumentTypes()[3])) {
        manifest.mtpHiddenSize = h.getDimSize(1);
        manifest.mtpCacheLayers = c.getNumLayers();
        manifest.mtpDraftReturnsHidden = draft.getNumResults() == 3;
      }
  for (const char *required : {"prefill", "decode"})
    if (!llvm::is_contained(manifest.entryPoints, required))
      return "'" + o.input + "' has no @" + required + " entry point";
  manifest.cacheScaleGroup = cacheType.getScaleGroup();
  module.walk([&](MLAOp op) {
    m.kvLoraRank = op.getConfig().getKvLoraRank();
    m.ropeDim = op.getConfig().getQkRopeHeadDim();
  });
  return "";
}

/// The pipeline `o` asks for.
PipelineOptions pipelineOptions(const CompileOptions &o, Target target) {
  PipelineOptions pipeline;
  pipeline.target = target;
  pipeline.traceRouting = o.traceRouting;
  pipeline.mlaForm = o.mlaForm;
  pipeline.explain = o.explain;
  pipeline.gpuArch = o.gpuArch;
  pipeline.attentionChunk = o.attentionChunk;
  pipeline.naiveMinTokens = o.naiveMinTokens;
  pipeline.testParallelOrder = o.testParallelOrder;
  pipeline.cudaPath = o.cudaPath;
  pipeline.tp = o.tp;
  pipeline.ep = o.ep;
  pipeline.dpAttention = o.dpAttention;
  return pipeline;
}

} // namespace

bool mlir::ds::compile(const CompileOptions &o, const CompileHooks &hooks,
                       std::vector<std::string> &errors, std::string *emitted) {
  // Validated below, with the other options; the stage list needs one now.
  Target target = parseTarget(o.target).value_or(Target::CPU);
  std::vector<std::string> stageNames =
      getStageNames(target, /*parallel=*/true);
  auto fail = [&](const std::string &msg) {
    errors.push_back(msg);
    return false;
  };
  if (std::string problem = checkOptions(o, stageNames); !problem.empty())
    return fail(problem);
  bool parallel = o.tp > 1 || o.ep > 1;

  MLIRContext ctx;
  prepareContext(ctx);
  DiagnosticCollector diags(ctx, errors);
  OwningOpRef<ModuleOp> module = StringRef(o.input).ends_with(".mlir")
                                     ? parseMlir(ctx, o.input, errors)
                                     : importCheckpoint(ctx, o, errors);
  if (!module)
    return false;
  if (failed(verify(*module)))
    return fail("'" + o.input + "' does not verify");
  if (hooks.afterStage)
    hooks.afterStage(0, "ds", *module);
  if (o.emit == "ds") {
    if (emitted)
      *emitted = printModule(*module);
    return true;
  }

  ModelLevel model;
  if (std::string problem = readModelLevel(*module, o, target, model);
      !problem.empty())
    return fail(problem);
  ManifestInputs &manifest = model.manifest;
  PipelineOptions pipeline = pipelineOptions(o, target);
  // --plan: figures of the per-rank IR, activations from the loops stage.
  PlanFigures plan;
  if (o.plan && !parallel)
    measurePartitioned(*module, plan);
  int index = 0;
  for (const Stage &stage : getPipelineStages(pipeline)) {
    ++index;
    PassManager pm(&ctx);
    if (hooks.configurePassManager &&
        failed(hooks.configurePassManager(pm, stage.name)))
      return fail("invalid pass manager options");
    stage.build(pm);
    TimingScope stageTiming;
    if (hooks.timing) {
      stageTiming = hooks.timing->nest(stage.name);
      pm.enableTiming(stageTiming);
    }
    if (o.verbose)
      llvm::errs() << "stage " << stage.name << ": " << stage.description
                   << "\n";
    if (failed(pm.run(*module)))
      return fail("stage '" + stage.name + "' failed on '" + o.input + "'");
    stageTiming.stop();
    if (stage.name == "loops")
      recordActivationPlan(*module, manifest, o.verbose || o.explain);
    if (o.plan && stage.name == "partitioned")
      measurePartitioned(*module, plan);
    if (o.plan && stage.name == "loops") {
      plan.activations = manifest.activationBytes;
      PlanOptions po = o.planOptions;
      po.tp = o.tp;
      po.ep = o.ep;
      po.dpAttention = o.dpAttention;
      std::string modelType;
      if (auto a = (*module)->getAttrOfType<StringAttr>("ds.model_type"))
        modelType = a.str();
      if (emitted)
        *emitted = formatPlan(plan, po, modelType);
      return true;
    }
    if (hooks.afterStage)
      hooks.afterStage(index, stage.name, *module);
    if (o.emit == stage.name) {
      if (emitted)
        *emitted = printModule(*module);
      return true;
    }
    if (o.emit == "ptx" && stage.name == "nvvm") {
      std::string ptx;
      if (!emitPTX(ctx, *module, pipeline, ptx, errors))
        return fail("cannot produce PTX for '" + o.input + "'");
      if (emitted)
        *emitted = ptx;
      return true;
    }
  }

  std::string object, error;
  {
    TimingScope codegen;
    if (hooks.timing)
      codegen = hooks.timing->nest("codegen (LLVM O2, object, link)");
    std::string hostIR;
    if (!emitSharedObject(*module, manifest.hostCpu, object, error,
                          hooks.hostIR ? &hostIR : nullptr))
      return fail(error);
    if (hooks.hostIR)
      hooks.hostIR(index + 1, hostIR);
  }
  LatentCacheType cacheType = model.cacheType;
  Type elem = cacheType.getElementType();
  std::string cacheDtype = elem.isBF16()       ? "bf16"
                           : elem.isF16()      ? "f16"
                           : cacheType.isFp8() ? "fp8"
                                               : "f32";
  std::string text =
      buildManifest(*module, manifest, cacheDtype, cacheType.getNumLayers(),
                    cacheType.getWidth(), model.kvLoraRank, model.ropeDim);
  if (!writeArtifact(o.output, text, object, error))
    return fail(error);
  if (o.verbose)
    llvm::errs() << "wrote " << o.output << " (" << object.size()
                 << " bytes of native code)\n";
  return true;
}
