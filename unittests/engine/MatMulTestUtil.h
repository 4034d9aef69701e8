//===- MatMulTestUtil.h - what the matmul tests share ----------*- C++ -*-===//
//
// The one-row products the invariance tests run through, and a scope that
// sets batch invariance and restores it.
//
//===----------------------------------------------------------------------===//
#ifndef DS_UNITTESTS_ENGINE_MATMULTESTUTIL_H
#define DS_UNITTESTS_ENGINE_MATMULTESTUTIL_H

#include "cpu/MatMul.h"

namespace dsrt::cpu::testing {

// The two one-row products: matmul (bf16 and FP8 rows against x rounded
// to bf16 pairs) and matmulF32 (x as it is: the naive form's expansion and
// u_h W_UV_h^T, whose FP8 GEMV takes short rows several at a time).
struct Product {
  const char *name;
  void (*fn)(const KernelSet &, const float *, int64_t, int64_t,
             const WeightMatrix &, int64_t, int64_t, float *, int64_t);
};
inline const Product kProducts[] = {{"matmul", matmul},
                                    {"matmulF32", matmulF32}};

/// Batch invariance set for a scope, what was set before restored after.
struct InvarianceScope {
  bool before = batchInvariant();
  explicit InvarianceScope(bool on) { setBatchInvariant(on); }
  ~InvarianceScope() { setBatchInvariant(before); }
};

} // namespace dsrt::cpu::testing

#endif // DS_UNITTESTS_ENGINE_MATMULTESTUTIL_H
