//===- NcclAbiTest.cpp - NcclApi.h against the toolkit's nccl.h -----------===//
//
// NcclApi.h spells NCCL's ABI out so that libdsrt builds without the CUDA
// toolkit; where the toolkit is installed, its header checks the spelling.
//
//===----------------------------------------------------------------------===//
#include "comm/NcclApi.h"

#include <nccl.h>

#include <gtest/gtest.h>

#include <type_traits>

namespace n = dsrt::comm::nccl;

static_assert(sizeof(n::ncclUniqueId) == sizeof(ncclUniqueId), "unique id");
static_assert(n::ncclSuccess == ncclSuccess &&
                  n::ncclInProgress == ncclInProgress,
              "results");
static_assert(n::ncclSum == ncclSum, "ops");
static_assert(n::ncclUint8 == ncclUint8 && n::ncclInt64 == ncclInt64 &&
                  n::ncclFloat32 == ncclFloat32,
              "types");
static_assert(sizeof(ncclResult_t) == sizeof(n::ncclResult_t) &&
                  sizeof(ncclDataType_t) == sizeof(int) &&
                  sizeof(ncclRedOp_t) == sizeof(int),
              "enums are ints");

TEST(NcclAbi, HeaderVersionIsSupported) {
  EXPECT_GE(NCCL_VERSION_CODE, n::kMinVersion);
}
