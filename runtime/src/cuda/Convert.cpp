//===- Convert.cpp - f32 -> bf16 on the device, for cuBLAS ----------------===//
#include "cuda/Convert.h"

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
)PTX";
}

std::string dsrt::cuda::convertToBf16(const Gpu &g, CUstream stream,
                                      CUdeviceptr dst, CUdeviceptr src,
                                      size_t n) {
  static std::once_flag once;
  static CUfunction fn = nullptr;
  static std::string failure;
  std::call_once(once, [&] {
    CUmodule m = nullptr;
    CUresult r = g.drv.cuModuleLoadData(&m, conversionPtx());
    if (r == CUDA_SUCCESS)
      r = g.drv.cuModuleGetFunction(&fn, m, "dsrt_f32_to_bf16");
    if (r != CUDA_SUCCESS)
      failure = g.describe("loading the f32 -> bf16 kernel", r);
  });
  if (!fn)
    return failure;
  if (n == 0)
    return "";
  unsigned long long count = n;
  void *params[] = {&dst, &src, &count};
  unsigned blocks = unsigned((n + 255) / 256);
  CUresult r = g.drv.cuLaunchKernel(fn, blocks, 1, 1, 256, 1, 1, 0, stream,
                                    params, nullptr);
  return r == CUDA_SUCCESS ? "" : g.describe("f32 -> bf16 launch", r);
}
