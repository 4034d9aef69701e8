//===- NcclLoadTest.cpp - NCCL's loader says what is wrong in one line ----===//
#include "comm/NcclApi.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace dsrt::comm;

namespace {

bool oneLine(const std::string &s) {
  return !s.empty() && s.find('\n') == std::string::npos;
}

TEST(NcclLoad, MissingLibraryNamesThePath) {
  std::string error;
  EXPECT_EQ(nullptr, nccl::load("/nonexistent/libnccl.so.2", error));
  EXPECT_EQ(0u,
            error.rfind("no NCCL: cannot load /nonexistent/libnccl.so.2 (", 0))
      << error;
  EXPECT_TRUE(oneLine(error));
}

TEST(NcclLoad, ALibraryThatIsNotNcclNamesTheMissingEntryPoint) {
  std::string error;
  EXPECT_EQ(nullptr, nccl::load("libm.so.6", error));
  EXPECT_EQ("NCCL library libm.so.6 lacks ncclGetVersion (not NCCL, or older "
            "than 2.7)",
            error);
}

/// The toolkit's NCCL, where this machine has one: every entry point found
/// and its version read, without a GPU.
TEST(NcclLoad, TheToolkitsNcclLoads) {
  const char *home = std::getenv("CUDA_HOME");
  std::string path = std::string(home && *home ? home : "/usr/local/cuda") +
                     "/lib64/libnccl.so.2";
  std::string error;
  auto api = nccl::load(path, error);
  if (!api && error.rfind("no NCCL: cannot load", 0) == 0)
    GTEST_SKIP() << "no NCCL in the CUDA toolkit here: " << error;
  ASSERT_NE(nullptr, api) << error;
  EXPECT_GE(api->version, nccl::kMinVersion);
  std::string text = nccl::describe(*api, "ncclSend", 4); // invalid argument
  EXPECT_EQ(0u, text.rfind("ncclSend: ", 0)) << text;
  EXPECT_NE(std::string::npos, text.find("NCCL_DEBUG")) << text;
  EXPECT_TRUE(oneLine(text)) << text;
}

} // namespace
