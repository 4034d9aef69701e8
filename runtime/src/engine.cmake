# The runtime's engine: artifact loader, CPU backend, C API (ds-run's side).
# Included at the end of runtime/CMakeLists.txt, which defines `dsrt`.
target_sources(dsrt PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/artifact/ArtifactFile.cpp
  ${CMAKE_CURRENT_LIST_DIR}/artifact/NativeObject.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/Gemm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/Bf16Gemm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/ThreadPool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu/Scratch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/abi/RuntimeCalls.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/CudaApi.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/Convert.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/Device.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/Gemm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda/MgpuAbi.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Error.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Validation.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Session.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Sampling.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api/Generate.cpp
)
# OpenBLAS for the GEMMs; libdl to load the artifact's native code.
find_package(Threads REQUIRED)
target_link_libraries(dsrt PRIVATE openblas dl Threads::Threads)

# tools/ is only added with the compiler; ds-run needs nothing of it.
if(NOT DS_BUILD_COMPILER)
  add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/../../tools/ds-run
                   ${CMAKE_BINARY_DIR}/tools/ds-run)
endif()
