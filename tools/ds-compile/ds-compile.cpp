//===- ds-compile.cpp - checkpoint or .mlir -> ds artifact ----------------===//
//
// Inputs: a Hugging Face checkpoint directory (config.json + safetensors), a
// config.json alone (no weights: IR only), or a .mlir file in the ds
// dialect. `--emit=<stage>` stops after that stage and prints its IR.
// Errors are one line naming the culprit; the output file is written to a
// temporary name and renamed, so a failure never leaves half a file.
//
//===----------------------------------------------------------------------===//
#include "ds/DSDialect.h"
#include "ds/Import/ImportModel.h"
#include "ds/Import/ModelConfig.h"
#include "ds/InitAll.h"
#include "ds/Pipelines/Pipelines.h"
#include "ds/Target/Artifact.h"
#include "ds/Import/CheckpointTypes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <chrono>

using namespace mlir;
namespace cl = llvm::cl;

namespace {
// Tool options (not pass options: those live in ODS / pipeline structs).
cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<checkpoint dir | config.json | .mlir>"));
cl::opt<std::string> outputPath("o", cl::desc("output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"));
cl::opt<std::string> emitStage(
    "emit",
    cl::desc("stop after this stage and print its IR: ds, absorbed, "
             "dispatched, kernels, loops, llvm (default: write an artifact)"),
    cl::init(""));
cl::opt<std::string> dumpIrDir(
    "dump-ir-dir", cl::desc("write the IR after each stage to DIR/NN-stage.mlir"),
    cl::value_desc("dir"), cl::init(""));
cl::opt<std::string> dtype("dtype", cl::desc("compute/cache dtype: f32 | bf16"),
                           cl::init("f32"));
cl::opt<std::string> target("target", cl::desc("cpu | cuda"), cl::init("cpu"));
cl::opt<bool> noWeightCheck(
    "no-weight-check",
    cl::desc("do not check the checkpoint's safetensors against the model"));
cl::opt<bool> verbose("v", cl::desc("print progress to stderr"));
cl::opt<bool> traceRouting(
    "trace-routing",
    cl::desc("make the artifact report each token's experts to the runtime "
             "(ds-run --dump-routing), for parity tests"));

[[noreturn]] void fail(const llvm::Twine &msg) {
  llvm::errs() << "ds-compile: error: " << msg << "\n";
  std::exit(1);
}

/// Writes `text` to outputPath atomically (temporary file + rename).
void writeOutput(llvm::StringRef text) {
  if (outputPath == "-") {
    llvm::outs() << text;
    llvm::outs().flush();
    return;
  }
  llvm::SmallString<256> tmp;
  int fd;
  llvm::SmallString<256> model(outputPath.getValue());
  model += ".tmp-%%%%%%";
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(model, fd, tmp))
    fail("cannot write '" + outputPath + "': " + ec.message());
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << text;
    os.close();
    if (os.has_error()) {
      llvm::sys::fs::remove(tmp);
      fail("cannot write '" + outputPath + "': " + os.error().message());
    }
  }
  if (std::error_code ec = llvm::sys::fs::rename(tmp, outputPath)) {
    llvm::sys::fs::remove(tmp);
    fail("cannot write '" + outputPath + "': " + ec.message());
  }
}

OwningOpRef<ModuleOp> importCheckpoint(MLIRContext &ctx, StringRef path) {
  bool isDir = llvm::sys::fs::is_directory(path);
  std::string configPath = path.str();
  if (isDir) {
    llvm::SmallString<256> p(path);
    llvm::sys::path::append(p, "config.json");
    configPath = std::string(p);
  }
  auto start = std::chrono::steady_clock::now();
  llvm::Expected<ds::ModelConfig> cfg = ds::readModelConfig(configPath);
  if (!cfg)
    fail(llvm::toString(cfg.takeError()));

  ds::ImportOptions opts;
  if (dtype == "bf16")
    opts.cacheElementType = BFloat16Type::get(&ctx);
  else if (dtype == "f32")
    opts.cacheElementType = Float32Type::get(&ctx);
  else
    fail("--dtype: expected f32 or bf16, got '" + dtype + "'");

  std::unique_ptr<ds::CheckpointTypes> ckpt;
  if (isDir && !noWeightCheck) {
    std::string err;
    ckpt = ds::CheckpointTypes::openIfPresent(path.str(), &ctx, err);
    if (!err.empty())
      fail(err);
    if (ckpt)
      opts.checkpointType = [&](StringRef name) { return ckpt->typeOf(name); };
  }

  OwningOpRef<ModuleOp> module = ds::importModel(&ctx, *cfg, opts);
  if (failed(verify(*module)))
    fail("internal error: the imported IR does not verify (" + configPath +
         ")");
  if (ckpt) {
    std::vector<std::string> problems =
        ckpt->validate(ds::collectRequiredWeights(*module));
    if (!problems.empty()) {
      for (const std::string &p : problems)
        llvm::errs() << "ds-compile: error: " << p << "\n";
      std::exit(1);
    }
  }
  if (verbose) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             start)
                   .count();
    llvm::errs() << "imported " << cfg->numHiddenLayers << " layers from "
                 << configPath << " in " << llvm::format("%.2f", s) << " s"
                 << (ckpt ? ", weights checked" : "") << "\n";
  }
  return module;
}

OwningOpRef<ModuleOp> parseMlir(MLIRContext &ctx, StringRef path) {
  std::string err;
  auto file = openInputFile(path, &err);
  if (!file)
    fail(err);
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  SourceMgrDiagnosticHandler handler(sm, &ctx);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sm, &ctx);
  if (!module)
    fail("cannot parse '" + path + "' as ds IR (see the diagnostic above)");
  return module;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  cl::ParseCommandLineOptions(argc, argv, "ds compiler\n");

  std::vector<std::string> stageNames = ds::getStageNames();
  if (!emitStage.empty() && !llvm::is_contained(stageNames, emitStage))
    fail("--emit=" + emitStage + ": unknown stage (stages: " +
         llvm::join(stageNames, ", ") + ")");
  if (target == "cuda")
    fail("--target cuda: the GPU backend is not available in this build yet");
  if (target != "cpu")
    fail("--target: expected cpu or cuda, got '" + target + "'");
  if (emitStage.empty() && outputPath == "-")
    fail("-o FILE is required to write an artifact (or pass --emit=<stage>)");
  if (!dumpIrDir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(dumpIrDir))
      fail("--dump-ir-dir: cannot create '" + dumpIrDir + "': " + ec.message());

  DialectRegistry registry;
  ds::registerAllDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();

  if (!llvm::sys::fs::exists(inputPath))
    fail("input '" + inputPath + "' does not exist");
  OwningOpRef<ModuleOp> module =
      StringRef(inputPath).ends_with(".mlir")
          ? parseMlir(ctx, inputPath)
          : importCheckpoint(ctx, inputPath);
  if (failed(verify(*module)))
    fail("'" + inputPath + "' does not verify (see the diagnostic above)");

  auto printModule = [&](ModuleOp m) {
    std::string text;
    llvm::raw_string_ostream os(text);
    m.print(os);
    os << "\n";
    return text;
  };
  int stageIndex = 0;
  auto dump = [&](StringRef stage) {
    if (dumpIrDir.empty())
      return;
    llvm::SmallString<256> p(dumpIrDir.getValue());
    llvm::sys::path::append(
        p, llvm::formatv("{0:2}-{1}.mlir", stageIndex, stage).str());
    std::error_code ec;
    llvm::raw_fd_ostream os(p, ec);
    if (ec)
      fail("--dump-ir-dir: cannot write '" + p + "': " + ec.message());
    os << printModule(*module);
  };
  dump("ds");
  if (emitStage == "ds") {
    writeOutput(printModule(*module));
    return 0;
  }

  // What the manifest needs from the model level, before it is lowered.
  ds::ManifestInputs manifest;
  manifest.target = target;
  manifest.dtype = dtype;
  manifest.weights = ds::collectRequiredWeights(*module);
  ds::LatentCacheType cacheType;
  module->walk([&](func::FuncOp fn) {
    for (Type t : fn.getArgumentTypes())
      if (auto c = dyn_cast<ds::LatentCacheType>(t)) {
        cacheType = c;
        manifest.entryPoints.push_back(fn.getName().str());
        break;
      }
  });
  for (const char *required : {"prefill", "decode"})
    if (!llvm::is_contained(manifest.entryPoints, required))
      fail("'" + inputPath + "' has no @" + required + " entry point");
  if (!cacheType)
    fail("'" + inputPath + "' has no entry point taking a !ds.latent_cache");
  int64_t kvLoraRank = 0, ropeDim = 0;
  module->walk([&](ds::MLAOp op) {
    kvLoraRank = op.getConfig().getKvLoraRank();
    ropeDim = op.getConfig().getQkRopeHeadDim();
  });

  DefaultTimingManager tm;
  applyDefaultTimingManagerCLOptions(tm);
  TimingScope timing = tm.getRootScope();
  ds::PipelineOptions pipelineOptions;
  pipelineOptions.target = target;
  pipelineOptions.traceRouting = traceRouting;
  for (const ds::Stage &stage : ds::getPipelineStages(pipelineOptions)) {
    ++stageIndex;
    PassManager pm(&ctx);
    if (failed(applyPassManagerCLOptions(pm)))
      fail("invalid pass manager options");
    TimingScope stageTiming = timing.nest(stage.name);
    pm.enableTiming(stageTiming);
    stage.build(pm);
    if (verbose)
      llvm::errs() << "stage " << stage.name << ": " << stage.description
                   << "\n";
    if (failed(pm.run(*module)))
      fail("stage '" + stage.name + "' failed on '" + inputPath +
           "' (see the diagnostic above)");
    dump(stage.name);
    if (emitStage == stage.name) {
      writeOutput(printModule(*module));
      return 0;
    }
  }

  std::string object, error;
  if (!ds::emitSharedObject(*module, object, error))
    fail(error);
  Type cacheElem = cacheType.getElementType();
  std::string cacheDtype = cacheElem.isBF16() ? "bf16"
                           : cacheElem.isF16() ? "f16"
                                               : "f32";
  std::string text = ds::buildManifest(
      *module, manifest, cacheDtype, cacheType.getNumLayers(),
      cacheType.getWidth(), kvLoraRank, ropeDim);
  if (!ds::writeArtifact(outputPath, text, object, error))
    fail(error);
  if (verbose)
    llvm::errs() << "wrote " << outputPath << " (" << object.size()
                 << " bytes of native code)\n";
  return 0;
}
