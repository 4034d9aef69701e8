//===- ds-compile.cpp - checkpoint or .mlir -> ds artifact ----------------===//
//
// Inputs: a Hugging Face checkpoint directory (config.json + safetensors), a
// config.json alone (no weights: IR only), or a .mlir file in the ds
// dialect. `--emit=<stage>` stops after that stage and prints its IR.
// Errors are one line each naming the culprit, exit code 1; outputs are
// written to a temporary name and renamed, so a failure never leaves half a
// file.
//
//===----------------------------------------------------------------------===//
#include "ds/Driver/Driver.h"
#include "ds/Support/HelpOptions.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/CommandLine.h"

#include <cstdlib>
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"


using namespace mlir;
namespace cl = llvm::cl;

namespace {
// Tool options (pass options live in ODS / pipeline option structs), listed
// by --help beside MLIR's (ds/Support/HelpOptions.h).
cl::OptionCategory toolCategory("ds-compile options");
cl::opt<std::string>
    inputPath(cl::cat(toolCategory), cl::Positional, cl::Required,
              cl::desc("<checkpoint dir | config.json | .mlir>"));
cl::opt<std::string> outputPath(cl::cat(toolCategory), "o",
                                cl::desc("output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"));
cl::opt<std::string> emitStage(
    cl::cat(toolCategory), "emit",
    cl::desc("stop after this stage and print its IR: ds, absorbed, "
             "dispatched, kernels, loops, llvm; with --target cuda: gpu, "
             "nvvm, ptx before llvm (default: write an artifact)"),
    cl::init(""));
cl::opt<std::string> dumpIrDir(
    cl::cat(toolCategory), "dump-ir-dir",
    cl::desc("write the IR after each stage to DIR/NN-stage.mlir (and the "
             "host code's LLVM IR to DIR/NN-host.ll)"),
    cl::value_desc("dir"), cl::init(""));
cl::opt<std::string> dtype(
    cl::cat(toolCategory), "kv-dtype",
    cl::desc("latent cache dtype: f32 | bf16 | fp8 (e4m3 latent with an f32 "
             "scale per 128 values, bf16 rope: FlashMLA's layout)"),
    cl::init("f32"));
cl::alias dtypeAlias(cl::cat(toolCategory), "dtype",
                     cl::desc("alias for --kv-dtype"), cl::aliasopt(dtype));
cl::opt<std::string> kvLayout(
    cl::cat(toolCategory), "kv-layout",
    cl::desc("what @ragged_step's pages hold: latent (kv_lora_rank + rope "
             "per token per layer, the default) | per-head (every head's K "
             "and V, an MHA deployment's cache: for comparisons)"),
    cl::init("latent"));
cl::opt<std::string> target(cl::cat(toolCategory), "target",
                            cl::desc("cpu | cuda"), cl::init("cpu"));
cl::opt<int64_t> attentionChunk(
    cl::cat(toolCategory), "attention-chunk",
    cl::desc("naive MLA form: context rows whose per-head K/V are built at a "
             "time (default 256)"),
    cl::init(256));
cl::opt<std::string> testParallelOrder(
    cl::cat(toolCategory), "test-parallel-order",
    cl::desc("tests, cpu target: run parallel loop iterations in reverse | "
             "rotate order (an order-dependent kernel would race on a GPU)"),
    cl::init(""));
cl::opt<std::string> gpuArch(cl::cat(toolCategory), "gpu-arch",
                             cl::desc("cuda: GPU architecture (sm_80, sm_90)"),
                             cl::init("sm_90"));
static std::string defaultCudaPath() {
  const char *home = std::getenv("CUDA_HOME");
  return home && *home ? home : "/usr/local/cuda";
}
cl::opt<std::string>
    cudaPath(cl::cat(toolCategory), "cuda-path",
             cl::desc("cuda: toolkit directory (ptxas, fatbinary, libdevice); "
                      "default $CUDA_HOME or /usr/local/cuda"),
             cl::init(defaultCudaPath()));
cl::opt<bool> noWeightCheck(
    cl::cat(toolCategory), "no-weight-check",
    cl::desc("do not check the checkpoint's safetensors against the model"));
cl::opt<bool> verbose(cl::cat(toolCategory), "v",
                      cl::desc("print progress to stderr"));
cl::opt<std::string>
    mlaForm(cl::cat(toolCategory), "mla-form",
            cl::desc("MLA attention form: auto (cost model), absorbed, naive"),
            cl::init("auto"));
cl::opt<int64_t> naiveMinTokens(
    cl::cat(toolCategory), "mla-naive-min-tokens",
    cl::desc("@ragged_step: the naive MLA form for sequences with at least "
             "this many new tokens in a step (default -1: the cost model's "
             "threshold; 0: every sequence; 2147483648: never)"),
    cl::init(-1));
cl::opt<bool> explain(cl::cat(toolCategory), "explain",
                      cl::desc("report the compiler's choices (MLA form, "
                               "costs) as remarks on stderr"));
cl::opt<bool> traceRouting(
    cl::cat(toolCategory), "trace-routing",
    cl::desc("make the artifact report each token's experts to the runtime "
             "(ds-run --dump-routing), for parity tests"));

cl::opt<int64_t> tp(cl::cat(toolCategory), "tp",
                    cl::desc("tensor-parallel ranks: attention heads, MLP "
                             "columns/rows and the vocabulary split over "
                             "them (run under mpiexec -n N)"),
                    cl::init(1));
cl::opt<int64_t> ep(cl::cat(toolCategory), "ep",
                    cl::desc("expert-parallel ranks: routed experts split "
                             "over them"),
                    cl::init(1));
cl::opt<bool> dpAttention(
    cl::cat(toolCategory), "dp-attention",
    cl::desc("with --ep: data-parallel attention (attention, dense layers "
             "and shared experts whole on every rank, each rank its own "
             "sequences; tokens dispatched all-to-all to the experts)"));

cl::opt<bool> plan(cl::cat(toolCategory), "plan",
                   cl::desc("print per-rank weight, cache, activation and "
                            "communication figures of the layout (--tp, "
                            "--ep) instead of writing an artifact"));
cl::opt<int64_t> planPrefill(cl::cat(toolCategory), "plan-prefill-tokens",
                             cl::desc("--plan: tokens of a prefill chunk"),
                             cl::init(512));
cl::opt<int64_t> planBatch(cl::cat(toolCategory), "plan-decode-batch",
                           cl::desc("--plan: sequences of a decode step"),
                           cl::init(32));
cl::opt<double> planMemory(cl::cat(toolCategory), "plan-device-memory",
                           cl::desc("--plan: GB per rank (H200: 141)"),
                           cl::init(141));

cl::opt<double> planLink(cl::cat(toolCategory), "plan-link-bandwidth",
                         cl::desc("--plan: GB/s per rank and direction between "
                                  "ranks (NVLink 4: 450; 400 Gb/s "
                                  "InfiniBand: 50)"),
                         cl::init(450));

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

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  mlir::ds::hideBackendOptions(&toolCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "ds compiler\n\n  --help-hidden also lists the LLVM options it "
      "accepts.\n");

  if (!dumpIrDir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(dumpIrDir))
      fail("--dump-ir-dir: cannot create '" + dumpIrDir + "': " + ec.message());

  ds::CompileOptions options;
  options.input = inputPath;
  options.output = outputPath;
  options.emit = emitStage;
  options.dtype = dtype;
  options.kvLayout = kvLayout;
  options.target = target;
  options.gpuArch = gpuArch;
  options.attentionChunk = attentionChunk;
  options.testParallelOrder = testParallelOrder;
  options.cudaPath = cudaPath;
  options.checkWeights = !noWeightCheck;
  options.traceRouting = traceRouting;
  options.mlaForm = mlaForm;
  options.naiveMinTokens = naiveMinTokens;
  options.explain = explain;
  options.verbose = verbose;
  options.tp = tp;
  options.ep = ep;
  options.dpAttention = dpAttention;
  options.plan = plan;
  options.planOptions.prefillTokens = planPrefill;
  options.planOptions.decodeBatch = planBatch;
  options.planOptions.deviceMemoryGB = planMemory;
  options.planOptions.linkGBs = planLink;

  DefaultTimingManager tm;
  applyDefaultTimingManagerCLOptions(tm);
  TimingScope timing = tm.getRootScope();
  ds::CompileHooks hooks;
  hooks.timing = &timing;
  hooks.configurePassManager = [&](PassManager &pm, StringRef) {
    return applyPassManagerCLOptions(pm);
  };
  hooks.afterStage = [&](int index, StringRef stage, ModuleOp module) {
    if (dumpIrDir.empty())
      return;
    llvm::SmallString<256> p(dumpIrDir.getValue());
    llvm::sys::path::append(p,
                            llvm::formatv("{0:2}-{1}.mlir", index, stage).str());
    std::error_code ec;
    llvm::raw_fd_ostream os(p, ec);
    if (ec)
      fail("--dump-ir-dir: cannot write '" + p + "': " + ec.message());
    os << ds::printModule(module);
  };

  hooks.hostIR = [&](int index, StringRef text) {
    if (dumpIrDir.empty())
      return;
    llvm::SmallString<256> p(dumpIrDir.getValue());
    llvm::sys::path::append(p, llvm::formatv("{0:2}-host.ll", index).str());
    std::error_code ec;
    llvm::raw_fd_ostream os(p, ec);
    if (ec)
      fail("--dump-ir-dir: cannot write '" + p + "': " + ec.message());
    os << text;
  };

  std::vector<std::string> errors;
  std::string emitted;
  if (!ds::compile(options, hooks, errors, &emitted)) {
    for (const std::string &e : errors)
      llvm::errs() << "ds-compile: error: " << e << "\n";
    return 1;
  }
  if (!emitStage.empty() || plan)
    writeOutput(emitted);
  return 0;
}
