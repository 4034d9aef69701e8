// RUN: ds-opt %s --ds-cuda-pipeline='gpu-arch=sm_80 cuda-path=/opt/cuda-test block-size=128' --dump-pass-pipeline 2>&1 | FileCheck %s --check-prefix=CUDA
// RUN: ds-opt %s --ds-cpu-pipeline='mla-form=naive attention-chunk=64' --dump-pass-pipeline 2>&1 | FileCheck %s --check-prefix=CPU

// Tests that ds-opt replays the pipelines with the options ds-compile
// passes: the CUDA arch and toolkit path reach the NVVM target and the
// binary serialisation, the block size the GPU mapping; the CPU pipeline
// shares the host lowering and has no GPU pass; only the CPU replaces
// math.exp by the polynomial (the GPU keeps libdevice's exp).

// CUDA-NOT: ds-approximate-exp
// CUDA: ds-absorb-mla{{.*}}form=auto
// CUDA: ds-map-kernels-to-gpu{{.*}}block-size=128
// CUDA: nvvm-attach-target{{.*}}chip=sm_80
// CUDA: gpu-to-llvm
// CUDA: finalize-memref-to-llvm
// CUDA-NOT: ds-approximate-exp
// CUDA: gpu-module-to-binary{{.*}}toolkit=/opt/cuda-test
// CUDA-NOT: ds-approximate-exp

// CPU: ds-absorb-mla{{.*}}form=naive
// CPU: convert-ds-to-loops{{.*}}attention-chunk=64
// CPU: ds-parallelize-kernels
// CPU: ds-approximate-exp
// CPU-NOT: gpu-to-llvm
// CPU: finalize-memref-to-llvm
// CPU-NOT: gpu-module-to-binary

module {
}
