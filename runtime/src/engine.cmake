# The runtime's engine: artifact loader, CPU backend, C API (ds-run's side).
# Included at the end of runtime/CMakeLists.txt, which defines `dsrt`.
target_sources(dsrt PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/artifact/ArtifactFile.cpp
  ${CMAKE_CURRENT_LIST_DIR}/artifact/NativeObject.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/Gemm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/Isa.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/TileChoice.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/MatMul.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/TileGemm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/TileTrace.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/Axpy.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/Gemv.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/SseTranspose.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/HeadMatmul.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsScalar.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAvx2.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAvx512.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAvx512Dots.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAmx.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAvx512Fp8.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/ExpfAvx2.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/ExpfAvx512.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/ThreadPool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/Scratch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/ZeroedPages.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/CacheDecode.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/NaiveAttend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/NaiveAttendAvx2.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/NaiveAttendAvx512.cpp
  ${CMAKE_CURRENT_LIST_DIR}/abi/NaiveAttendCalls.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/LatentAttend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/LatentAttendAvx2.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/LatentAttendAvx512.cpp
  ${CMAKE_CURRENT_LIST_DIR}/abi/LatentAttendCalls.cpp
  ${CMAKE_CURRENT_LIST_DIR}/abi/RuntimeCalls.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/CudaApi.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/Convert.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/Device.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/Gemm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/Graph.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/MgpuAbi.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Error.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Validation.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Session.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Sampling.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Generate.cpp
)
# Each ISA's kernels are compiled with its flags and called only on CPUs
# that have it (cpu/Isa.cpp); nothing else is built with them.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAvx2.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAvx512.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAvx512Dots.cpp
    PROPERTIES COMPILE_OPTIONS
    "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512bf16")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/ExpfAvx2.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/ExpfAvx512.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mavx512f")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/NaiveAttendAvx2.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/LatentAttendAvx2.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/LatentAttendAvx512.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mavx512f")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/NaiveAttendAvx512.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mavx512f")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAvx512Fp8.cpp
    PROPERTIES COMPILE_OPTIONS
    "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512bf16;-mavx512vbmi;-mgfni")
  # ds-cpu-bench ports: the instructions FP8's kernels are made of.
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/PortBench.cpp
    PROPERTIES COMPILE_OPTIONS
    "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512bf16;-mavx512vbmi;-mgfni")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cpu/KernelsAmx.cpp
    PROPERTIES COMPILE_OPTIONS
    "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512bf16;-mavx512vbmi;-mamx-tile;-mamx-bf16")
endif()
# libdl to load the artifact's native code. No BLAS: every GEMM is the
# runtime's own kernels, and linking OpenBLAS only started its thread pool,
# whose worker spins in sched_yield for its first ~0.1 s in every process.
find_package(Threads REQUIRED)
target_link_libraries(dsrt PRIVATE dl Threads::Threads)

# tools/ is only added with the compiler; ds-run needs nothing of it.
if(NOT DS_BUILD_COMPILER)
  add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/../../tools/ds-run
                   ${CMAKE_BINARY_DIR}/tools/ds-run)
endif()

# The serving engine (dsrt_engine.h): pages, scheduler, prefix cache,
# executors. Sources in runtime/src/engine/.
target_sources(dsrt PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/engine/BlockPool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/PrefixCache.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/Scheduler.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/Sampler.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/Executor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/FakeExecutor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/SessionExecutor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/StepExecutor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/MultiRank.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/GpuStepExecutor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/Engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/EngineSpeculative.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/Speculative.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine/EngineApi.cpp
)
# bench/cpu_kernels.py's probe of the machine's limits (GEMM rates, read
# bandwidth) and of a model's load, prefill, decode and peak memory.
add_executable(ds-cpu-bench ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/CpuBench.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/OneDnnGemm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/OpenBlasGemm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/AttendBench.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/BenchUtil.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/ColdGemmBench.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/HeadBench.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/LatentBench.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/PortBench.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/ReadStream.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/TileBench.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../../bench/cpu/WeightSpans.cpp)
target_include_directories(ds-cpu-bench PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(ds-cpu-bench PRIVATE dsrt ${CMAKE_DL_LIBS} Threads::Threads)
# oneDNN (libdnnl-dev, installed by `make deps`) is the reference GEMM rate
# for f32 and bf16; without it the benchmark says so and uses OpenBLAS/ds.
find_library(DS_ONEDNN NAMES dnnl)
find_path(DS_ONEDNN_INCLUDE oneapi/dnnl/dnnl.h)
if(DS_ONEDNN AND DS_ONEDNN_INCLUDE)
  target_compile_definitions(ds-cpu-bench PRIVATE DS_HAVE_ONEDNN)
  target_include_directories(ds-cpu-bench PRIVATE ${DS_ONEDNN_INCLUDE})
  target_link_libraries(ds-cpu-bench PRIVATE ${DS_ONEDNN})
else()
  message(STATUS "oneDNN not found: ds-cpu-bench gemm reports no oneDNN rate")
endif()
set_target_properties(ds-cpu-bench PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
