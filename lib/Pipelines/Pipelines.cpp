//===- Pipelines.cpp - the ds pass pipeline, stage by stage ---------------===//
#include "ds/Pipelines/Pipelines.h"
#include "ds/Conversion/Passes.h"
#include "ds/Transforms/Passes.h"

#include "llvm/ADT/StringSwitch.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/GPUCommon/GPUCommonPass.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Conversion/VectorToSCF/VectorToSCF.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::ds;

namespace {

/// The device stages (cuda) and the host lowering's llvm stage.
std::vector<Stage> cudaStages(const PipelineOptions &opts) {
  return {
      {"gpu", "each parallel loop nest a gpu.launch (split-KV decode "
              "attention), device buffers, kernels outlined to gpu.module",
       [opts](OpPassManager &pm) {
         DSMapKernelsToGPUPassOptions map;
         map.blockSize = opts.gpuBlockSize;
         pm.addPass(createDSMapKernelsToGPUPass(map));
         pm.addPass(createGpuKernelOutliningPass());
         pm.addPass(createCanonicalizerPass());
         pm.addPass(createCSEPass());
       }},
      {"nvvm", "device code in the NVVM/LLVM dialects, target " + opts.gpuArch,
       [opts](OpPassManager &pm) {
         GpuNVVMAttachTargetOptions target;
         target.chip = opts.gpuArch;
         target.optLevel = 3;
         pm.addPass(createGpuNVVMAttachTarget(target));
         OpPassManager &dev = pm.nest<gpu::GPUModuleOp>();
         dev.addPass(createConvertVectorToSCFPass());
         dev.addPass(createSCFToControlFlowPass());
         dev.addPass(createConvertGpuOpsToNVVMOps());
         dev.addPass(createCanonicalizerPass());
         dev.addPass(createCSEPass());
         dev.addPass(createReconcileUnrealizedCastsPass());
       }},
      {"llvm", "host code in the LLVM dialect calling the mgpu* runtime ABI; "
               "device code serialised with ptxas",
       [opts](OpPassManager &pm) {
         buildHostLowering(pm, Target::CUDA);
         addGpuBinaryPass(pm, opts, "fatbin");
       }},
  };
}

} // namespace

std::optional<Target> mlir::ds::parseTarget(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<Target>>(name)
      .Case("cpu", Target::CPU)
      .Case("cuda", Target::CUDA)
      .Default(std::nullopt);
}

llvm::StringRef mlir::ds::targetName(Target target) {
  switch (target) {
  case Target::CPU:
    return "cpu";
  case Target::CUDA:
    return "cuda";
  }
  llvm_unreachable("unknown target");
}

void mlir::ds::buildHostLowering(OpPassManager &pm, Target target) {
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  if (target == Target::CUDA)
    pm.addPass(createGpuToLLVMConversionPass());
  // The FP8 cache write stores each f32 scale as one vector<4xi8>
  // (CacheCodec.h); nothing else on the host is vector code.
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::ds::addGpuBinaryPass(OpPassManager &pm, const PipelineOptions &opts,
                                const std::string &format) {
  GpuModuleToBinaryPassOptions bin;
  bin.toolkitPath = opts.cudaPath;
  bin.compilationTarget = format;
  pm.addPass(createGpuModuleToBinaryPass(bin));
}


/// Tensor/expert parallelism: the layout as shard annotations, then the
/// per-rank IR (only when the job has more than one rank).
static std::vector<Stage> parallelStages(const PipelineOptions &opts) {
  return {
      {"sharded", "the parallel layout as shard dialect annotations on the "
                  "weight operands (heads, MLP columns/rows, vocabulary, "
                  "experts)",
       [opts](OpPassManager &pm) {
         DSShardModelPassOptions shard;
         shard.tp = opts.tp;
         shard.ep = opts.ep;
         shard.dpAttention = opts.dpAttention;
         pm.addPass(createDSShardModelPass(shard));
       }},
      {"partitioned", "per-rank IR: weight pieces, shard collectives after "
                      "the ops whose outputs are partial or split",
       [](OpPassManager &pm) { pm.addPass(createDSPartitionModelPass()); }},
  };
}

std::vector<Stage> mlir::ds::getPipelineStages(const PipelineOptions &opts) {
  std::vector<Stage> stages;
  if (opts.tp > 1 || opts.ep > 1)
    stages = parallelStages(opts);
  std::vector<Stage> model = {
      {"absorbed", "MLA rewritten: attention over the latent cache (absorbed) "
                   "or with per-head K/V inside the kernel (naive), by cost",
       [opts](OpPassManager &pm) {
         DSAbsorbMLAPassOptions absorb;
         absorb.form = opts.mlaForm;
         absorb.explain = opts.explain;
         absorb.naiveMinTokens = opts.naiveMinTokens;
         // The naive form over pages drives its chunks from host loops that
         // read the batch description: built for the CPU only, so a GPU
         // ragged step stays absorbed.
         if (opts.target == Target::CUDA)
           absorb.naiveMinTokens = int64_t(1) << 31;
         pm.addNestedPass<func::FuncOp>(createDSAbsorbMLAPass(absorb));
       }},
      {"dispatched", "MoE as route -> permute -> grouped matmul -> combine",
       [](OpPassManager &pm) {
         pm.addNestedPass<func::FuncOp>(createDSDispatchExpertsPass());
       }},
      {"kernels", "kernel-level ds ops only (dense blocks decomposed, "
                  "residual adds fused with the next RMSNorm, gate|up packed "
                  "with the SiLU-mul as its epilogue, "
                  "routing fused with the permutation, shared experts "
                  "folded into the grouped matmuls; on the CPU the experts "
                  "gather their rows themselves)",
       [opts](OpPassManager &pm) {
         pm.addNestedPass<func::FuncOp>(createDSDecomposeDensePass());
         pm.addNestedPass<func::FuncOp>(createDSFuseResidualNormPass());
         pm.addNestedPass<func::FuncOp>(createDSFuseRoutePermutePass());
         pm.addNestedPass<func::FuncOp>(createDSFoldSharedExpertsPass());
         pm.addNestedPass<func::FuncOp>(createDSFuseGateUpPass());
         pm.addNestedPass<func::FuncOp>(createDSFuseSiluEpiloguePass());
         // The runtime's packing gathers the rows (CPU); cuBLAS's grouped
         // GEMMs read contiguous rows.
         if (opts.target != Target::CUDA)
           pm.addNestedPass<func::FuncOp>(createDSGatherExpertRowsPass());
         pm.addPass(createCSEPass());
       }},
      {"loops", "loop nests over buffers (activations planned into one "
                "scratch buffer), GEMMs and weights as runtime calls",
       [opts](OpPassManager &pm) {
         ConvertDSToLoopsPassOptions loops;
         loops.traceRouting = opts.traceRouting;
         loops.attentionChunk = opts.attentionChunk;
         // cuBLAS has no SiLU-mul epilogue: the GPU keeps it a kernel.
         loops.gemmEpilogue = opts.target != Target::CUDA;
         // The GPU path keeps the loop nest: it reads a device copy.
         loops.runtimeEmbedding = opts.target != Target::CUDA;
         // kv_b_proj read in place by the runtime (CPU); the GPU's kernels
         // read its device copy.
         loops.headMatmulCalls = opts.target != Target::CUDA;
         // FP8 cache rows decoded by the runtime's vector code (CPU).
         loops.cacheDecodeCalls = opts.target != Target::CUDA;
         // Decode's attention over the f32 cache through the runtime's
         // blocked kernel (CPU); the GPU rebuilds the nest as split-KV.
         loops.latentAttentionCalls = opts.target != Target::CUDA;
         // MoE rows moved and combined a row at a time, columns vectorised
         // (CPU); the GPU keeps a thread per element.
         loops.moeRowLoops = opts.target != Target::CUDA;
         // Each cache row read once per group of heads (the GPU replaces
         // the kernel with its split-KV form).
         loops.attentionHeadGroup = opts.target != Target::CUDA ? 0 : 1;
         pm.addPass(createConvertDSToLoopsPass(loops));
         pm.addPass(createDSPlanActivationsPass());
         // On the GPU, canonicalisation waits for the mapping: it would fold
         // single-trip parallel loops (a decode step's one token) into host
         // code, and each would become a one-thread launch plus a
         // synchronous copy of its scalar back to the host.
         if (opts.target != Target::CUDA) {
           pm.addPass(createCanonicalizerPass());
           pm.addPass(createCSEPass());
         }
       }},
  };
  for (Stage &s : model)
    stages.push_back(std::move(s));
  if (opts.target == Target::CUDA) {
    for (Stage &s : cudaStages(opts))
      stages.push_back(std::move(s));
    return stages;
  }
  stages.push_back(
      {"llvm", "the LLVM dialect, ready for translation (heavy kernels "
               "split over the runtime's threads first)",
       [opts](OpPassManager &pm) {
         // Test only: iterations out of order, to catch GPU races here.
         if (!opts.testParallelOrder.empty())
           pm.addPass(createDSTestPermuteParallelLoopsPass(
               {opts.testParallelOrder}));
         pm.addPass(createDSParallelizeKernelsPass());
         // exp inline, so the SiLU, routing and softmax loops vectorise
         // (the GPU keeps libdevice's exp).
         pm.addPass(createDSApproximateExpPass());
         buildHostLowering(pm, Target::CPU);
       }});
  return stages;
}

std::vector<std::string> mlir::ds::getStageNames(Target target,
                                                  bool parallel) {
  std::vector<std::string> names{"ds"};
  PipelineOptions opts;
  opts.target = target;
  if (parallel)
    opts.tp = 2; // the stages of a partitioned model
  for (const Stage &s : getPipelineStages(opts)) {
    names.push_back(s.name);
    if (s.name == "nvvm")
      names.push_back("ptx");
  }
  return names;
}

PipelineOptions PipelineCLOptions::toOptions(Target target) const {
  PipelineOptions opts;
  opts.target = target;
  opts.mlaForm = mlaForm;
  opts.traceRouting = traceRouting;
  opts.attentionChunk = attentionChunk;
  opts.naiveMinTokens = naiveMinTokens;
  opts.gpuArch = gpuArch;
  opts.cudaPath = cudaPath;
  opts.gpuBlockSize = gpuBlockSize;
  opts.tp = tp;
  opts.ep = ep;
  opts.dpAttention = dpAttention;
  return opts;
}

void mlir::ds::registerPipelines() {
  PassPipelineRegistration<PipelineCLOptions>(
      "ds-cpu-pipeline", "every ds stage from the model level to LLVM (CPU)",
      [](OpPassManager &pm, const PipelineCLOptions &cl) {
        for (const Stage &s : getPipelineStages(cl.toOptions(Target::CPU)))
          s.build(pm);
      });
  PassPipelineRegistration<PipelineCLOptions>(
      "ds-cuda-pipeline",
      "every ds stage from the model level to host LLVM + fatbin "
      "(gpu-arch, default sm_90; cuda-path, default /usr/local/cuda)",
      [](OpPassManager &pm, const PipelineCLOptions &cl) {
        for (const Stage &s : getPipelineStages(cl.toOptions(Target::CUDA)))
          s.build(pm);
      });
}
