//===- Convert.cpp - the runtime's own kernels, for cuBLAS ----------------===//
#include "cuda/Convert.h"

#include <map>
#include <mutex>

using namespace dsrt::cuda;

const char *dsrt::cuda::conversionPtx() {
  return R"PTX(//
// dsrt_f32_to_bf16(dst, src, n): dst[i] = bf16(src[i]), round to nearest even.
//
.version 7.8
.target sm_80
.address_size 64

.visible .entry dsrt_f32_to_bf16(
	.param .u64 dst,
	.param .u64 src,
	.param .u64 n)
{
	.reg .pred 	%p<2>;
	.reg .b16 	%h<2>;
	.reg .b32 	%r<4>;
	.reg .f32 	%f<2>;
	.reg .b64 	%rd<12>;

	ld.param.u64 	%rd1, [dst];
	ld.param.u64 	%rd2, [src];
	ld.param.u64 	%rd3, [n];
	mov.u32 	%r1, %ctaid.x;
	mov.u32 	%r2, %ntid.x;
	mov.u32 	%r3, %tid.x;
	mul.wide.u32 	%rd4, %r1, %r2;
	cvt.u64.u32 	%rd5, %r3;
	add.s64 	%rd6, %rd4, %rd5;
	setp.ge.u64 	%p1, %rd6, %rd3;
	@%p1 bra 	$L_done;
	cvta.to.global.u64 	%rd7, %rd2;
	shl.b64 	%rd8, %rd6, 2;
	add.s64 	%rd9, %rd7, %rd8;
	ld.global.f32 	%f1, [%rd9];
	cvt.rn.bf16.f32 	%h1, %f1;
	cvta.to.global.u64 	%rd10, %rd1;
	shl.b64 	%rd11, %rd6, 1;
	add.s64 	%rd10, %rd10, %rd11;
	st.global.b16 	[%rd10], %h1;
$L_done:
	ret;
}

//
// dsrt_expert_rows(ptrs, off, experts, rows, w, wstride, x, xstride, y,
// ystride): for each row r < rows of a permuted MoE activation, the expert
// e owning it (off[e] <= r < off[e + 1], clamped to [0, experts) so bad
// offsets stay in bounds) and the three pointers of its one-row product:
// ptrs[r] = w + e * wstride, ptrs[rows + r] = x + r * xstride,
// ptrs[2 * rows + r] = y + r * ystride (strides in bytes).
//
.visible .entry dsrt_expert_rows(
	.param .u64 ptrs,
	.param .u64 off,
	.param .u64 experts,
	.param .u64 rows,
	.param .u64 w,
	.param .u64 wstride,
	.param .u64 x,
	.param .u64 xstride,
	.param .u64 y,
	.param .u64 ystride)
{
	.reg .pred 	%p<4>;
	.reg .b32 	%r<5>;
	.reg .b64 	%rd<32>;

	ld.param.u64 	%rd1, [ptrs];
	ld.param.u64 	%rd2, [off];
	ld.param.u64 	%rd3, [experts];
	ld.param.u64 	%rd4, [rows];
	mov.u32 	%r1, %ctaid.x;
	mov.u32 	%r2, %ntid.x;
	mov.u32 	%r3, %tid.x;
	mul.wide.u32 	%rd5, %r1, %r2;
	cvt.u64.u32 	%rd6, %r3;
	add.s64 	%rd7, %rd5, %rd6;
	setp.ge.u64 	%p1, %rd7, %rd4;
	@%p1 bra 	$L_rows_done;
	cvta.to.global.u64 	%rd8, %rd2;
	mov.u64 	%rd9, 0;
	mov.u64 	%rd10, 0;
$L_scan:
	setp.ge.u64 	%p2, %rd10, %rd3;
	@%p2 bra 	$L_found;
	add.s64 	%rd11, %rd10, 1;
	shl.b64 	%rd12, %rd11, 2;
	add.s64 	%rd13, %rd8, %rd12;
	ld.global.s32 	%r4, [%rd13];
	cvt.s64.s32 	%rd14, %r4;
	setp.le.s64 	%p3, %rd14, %rd7;
	selp.b64 	%rd9, %rd11, %rd9, %p3;
	mov.u64 	%rd10, %rd11;
	bra.uni 	$L_scan;
$L_found:
	add.s64 	%rd15, %rd3, -1;
	min.u64 	%rd9, %rd9, %rd15;
	ld.param.u64 	%rd16, [w];
	ld.param.u64 	%rd17, [wstride];
	mad.lo.s64 	%rd18, %rd9, %rd17, %rd16;
	ld.param.u64 	%rd19, [x];
	ld.param.u64 	%rd20, [xstride];
	mad.lo.s64 	%rd21, %rd7, %rd20, %rd19;
	ld.param.u64 	%rd22, [y];
	ld.param.u64 	%rd23, [ystride];
	mad.lo.s64 	%rd24, %rd7, %rd23, %rd22;
	cvta.to.global.u64 	%rd25, %rd1;
	shl.b64 	%rd26, %rd7, 3;
	add.s64 	%rd27, %rd25, %rd26;
	st.global.u64 	[%rd27], %rd18;
	shl.b64 	%rd28, %rd4, 3;
	add.s64 	%rd29, %rd27, %rd28;
	st.global.u64 	[%rd29], %rd21;
	add.s64 	%rd30, %rd29, %rd28;
	st.global.u64 	[%rd30], %rd24;
$L_rows_done:
	ret;
}
)PTX";
}

/// A kernel of the runtime's own module, loaded once per process.
static CUfunction runtimeKernel(const Gpu &g, const char *name,
                                std::string &error) {
  static std::once_flag once;
  static CUmodule module = nullptr;
  static std::string failure;
  std::call_once(once, [&] {
    CUresult r = g.drv.cuModuleLoadData(&module, conversionPtx());
    if (r != CUDA_SUCCESS)
      failure = g.describe("loading the runtime's kernels", r);
  });
  if (!module) {
    error = failure;
    return nullptr;
  }
  static std::mutex m;
  static std::map<std::string, CUfunction> functions;
  std::lock_guard<std::mutex> lock(m);
  CUfunction &fn = functions[name];
  if (!fn) {
    CUresult r = g.drv.cuModuleGetFunction(&fn, module, name);
    if (r != CUDA_SUCCESS) {
      fn = nullptr;
      error = g.describe("cuModuleGetFunction", r) + " (" + name + ")";
    }
  }
  return fn;
}

std::string dsrt::cuda::convertToBf16(const Gpu &g, CUstream stream,
                                      CUdeviceptr dst, CUdeviceptr src,
                                      size_t n) {
  std::string error;
  CUfunction fn = runtimeKernel(g, "dsrt_f32_to_bf16", error);
  if (!fn)
    return error;
  if (n == 0)
    return "";
  unsigned long long count = n;
  void *params[] = {&dst, &src, &count};
  unsigned blocks = unsigned((n + 255) / 256);
  CUresult r = g.drv.cuLaunchKernel(fn, blocks, 1, 1, 256, 1, 1, 0, stream,
                                    params, nullptr);
  return r == CUDA_SUCCESS ? "" : g.describe("f32 -> bf16 launch", r);
}

std::string dsrt::cuda::expertRowPointers(const Gpu &g, CUstream stream,
                                          const ExpertRows &a) {
  std::string error;
  CUfunction fn = runtimeKernel(g, "dsrt_expert_rows", error);
  if (!fn)
    return error;
  if (a.rows == 0 || a.experts == 0)
    return "";
  unsigned long long ptrs = a.pointers, off = a.offsets, experts = a.experts,
                     rows = a.rows, w = a.w, ws = a.wStride, x = a.x,
                     xs = a.xStride, y = a.y, ys = a.yStride;
  void *params[] = {&ptrs, &off, &experts, &rows, &w, &ws, &x, &xs, &y, &ys};
  unsigned blocks = unsigned((a.rows + 255) / 256);
  CUresult r = g.drv.cuLaunchKernel(fn, blocks, 1, 1, 256, 1, 1, 0, stream,
                                    params, nullptr);
  return r == CUDA_SUCCESS ? "" : g.describe("expert rows launch", r);
}
