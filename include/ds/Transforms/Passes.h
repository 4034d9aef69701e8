//===- Passes.h - ds transformations ----------------------------*- C++ -*-===//
//
// The ds transforms (Passes.td): model-level rewrites and fusions, whose
// patterns Patterns.h exposes, and the buffer-level transforms that run
// after convert-ds-to-loops (ds-plan-activations, ds-parallelize-kernels).
//
//===----------------------------------------------------------------------===//
#ifndef DS_TRANSFORMS_PASSES_H
#define DS_TRANSFORMS_PASSES_H

#include "ds/DSDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace mlir::ds {
#define GEN_PASS_DECL
#include "ds/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

#endif // DS_TRANSFORMS_PASSES_H
