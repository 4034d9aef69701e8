//===- PerHeadCachePatterns.cpp - per-head K/V cache ops -> loop nests ----===//
//
// ds.paged_kv_write and ds.paged_kv_attention (ds-compile
// --kv-layout=per-head): the cache is updated in place, as the latent
// cache's writes are; the kernels are PerHeadCacheKernels.cpp's.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

#include <string>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

namespace {

struct PagedKVWriteLowering : KernelPattern<PagedKVWriteOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(PagedKVWriteOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value cache = use(k, op, op.getCache(), adaptor.getCache());
    PagedKVCacheType type = op.getCache().getType();
    int64_t pageSize = type.getPageSize(), dv = type.getValueWidth();
    k.outline("paged_kv_write",
              std::to_string(pageSize) + "/" + std::to_string(dv),
              {cache, use(k, op, op.getKv(), adaptor.getKv()),
               use(k, op, op.getRopeKey(), adaptor.getRopeKey()),
               use(k, op, op.getPositions(), adaptor.getPositions()),
               use(k, op, op.getQueryStart(), adaptor.getQueryStart()),
               use(k, op, op.getBlockTables(), adaptor.getBlockTables()),
               k.cIdx(op.getLayer())},
              [&](ValueRange a) {
                k.pagedKVWrite(CacheRows{a[0], a[6], a[5], a[4], pageSize},
                               a[1], a[2], a[3], dv);
              });
    rewriter.replaceOp(op, cache);
    return success();
  }
};

struct PagedKVAttentionLowering : KernelPattern<PagedKVAttentionOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(PagedKVAttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value qn = use(k, op, op.getQNope(), adaptor.getQNope());
    Value out = alloc(k, op.getResult(), {k.dim(qn, 0)});
    double scale = op.getScale().convertToDouble();
    int64_t pageSize = op.getCache().getType().getPageSize();
    func::FuncOp kernel =
        k.outline("paged_kv_attention",
                  std::to_string(scale) + "/" + std::to_string(pageSize),
                  {qn, use(k, op, op.getQRope(), adaptor.getQRope()),
                   use(k, op, op.getCache(), adaptor.getCache()),
                   use(k, op, op.getPositions(), adaptor.getPositions()),
                   use(k, op, op.getQueryStart(), adaptor.getQueryStart()),
                   use(k, op, op.getBlockTables(), adaptor.getBlockTables()),
                   out, k.cIdx(op.getLayer())},
                  [&](ValueRange a) {
                    k.pagedKVAttention(
                        a[0], a[1], CacheRows{a[2], a[7], a[5], a[4], pageSize},
                        a[3], a[6], scale);
                  });
    kernel->setAttr("ds.scale", op.getScaleAttr());
    rewriter.replaceOp(op, out);
    return success();
  }
};

} // namespace

void mlir::ds::loops::populatePerHeadCachePatterns(
    const TypeConverter &converter, LoweringState &state,
    RewritePatternSet &patterns) {
  patterns.add<PagedKVWriteLowering, PagedKVAttentionLowering>(
      converter, patterns.getContext(), state);
}
