//===- TestCacheCodec.cpp - ds-test-cache-codec ---------------------------===//
//
// Test only (see Passes.td): calls to @ds_test_{encode,decode}_e4m3* become
// the codec's arithmetic, for test/Integration/CPU/cache-codec.test.
//
//===----------------------------------------------------------------------===//
#include "ds/Conversion/CacheCodec.h"
#include "ds/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-test-cache-codec"

namespace mlir::ds {
#define GEN_PASS_DEF_DSTESTCACHECODECPASS
#include "ds/Conversion/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;

namespace {

struct DSTestCacheCodecPass
    : ds::impl::DSTestCacheCodecPassBase<DSTestCacheCodecPass> {
  void runOnOperation() override {
    SmallVector<func::CallOp> calls;
    getOperation().walk([&](func::CallOp call) { calls.push_back(call); });
    for (func::CallOp call : calls) {
      StringRef callee = call.getCallee();
      bool encode = callee == "ds_test_encode_e4m3";
      bool bf16 = callee == "ds_test_bf16_bits";
      if (!encode && !bf16 && callee != "ds_test_decode_e4m3" &&
          callee != "ds_test_decode_e4m3_v8")
        continue;
      if (call.getNumOperands() != 1 || call.getNumResults() != 1) {
        call.emitError() << "@" << callee << " takes and returns one value";
        return signalPassFailure();
      }
      OpBuilder b(call);
      Value in = call.getOperand(0);
      Value out = bf16     ? ds::codec::bf16Bits(b, call.getLoc(), in)
                  : encode ? ds::codec::encodeE4M3(b, call.getLoc(), in)
                           : ds::codec::decodeE4M3(b, call.getLoc(), in);
      if (out.getType() != call.getResult(0).getType()) {
        call.emitError() << "@" << callee << " must return " << out.getType();
        return signalPassFailure();
      }
      LLVM_DEBUG(llvm::dbgs() << DEBUG_TYPE ": expanded @" << callee << "\n");
      call.getResult(0).replaceAllUsesWith(out);
      call.erase();
    }
    for (StringRef name : {"ds_test_encode_e4m3", "ds_test_decode_e4m3",
                           "ds_test_decode_e4m3_v8", "ds_test_bf16_bits"})
      if (auto fn = getOperation().lookupSymbol<func::FuncOp>(name);
          fn && fn.isDeclaration() && fn.symbolKnownUseEmpty(getOperation()))
        fn.erase();
  }
};

} // namespace
