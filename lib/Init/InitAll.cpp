//===- InitAll.cpp - everything ds tools register -------------------------===//
#include "ds/InitAll.h"
#include "ds/DSDialect.h"
#include "ds/Transforms/Passes.h"
#include "ds/Conversion/Passes.h"
#include "ds/Pipelines/Pipelines.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"

void mlir::ds::registerAllDialects(DialectRegistry &registry) {
  registry.insert<ds::DSDialect, func::FuncDialect, arith::ArithDialect,
                  math::MathDialect, tensor::TensorDialect,
                  linalg::LinalgDialect, bufferization::BufferizationDialect,
                  memref::MemRefDialect, scf::SCFDialect,
                  vector::VectorDialect, gpu::GPUDialect, NVVM::NVVMDialect,
                  LLVM::LLVMDialect, shard::ShardDialect>();
  // The lowering to LLVM and the CUDA path: ConvertToLLVM interfaces (for
  // gpu-to-llvm), the NVVM target (serialisation; without it Debian's
  // assert-free libMLIR segfaults) and the translations that embed device
  // binaries. ds-opt replays these stages too.
  mlir::registerAllExtensions(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  gpu::registerOffloadingLLVMTranslationInterfaceExternalModels(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
}

void mlir::ds::registerAllPasses() {
  // Upstream passes, so any lowering stage can be replayed with
  // --pass-pipeline; ds's own passes register here as they land.
  mlir::registerAllPasses();
  ds::registerDSTransformsPasses();
  ds::registerDSConversionPasses();
  ds::registerPipelines();
}
