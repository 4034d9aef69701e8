//===- CommunicatorTest.cpp - one process, argument checks, timeout -------===//
#include "comm/Communicator.h"
#include "dsrt/dsrt_comm.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

using namespace dsrt::comm;

namespace {

/// Sets an environment variable for one test.
struct ScopedEnv {
  std::string name;
  std::string old;
  bool had;
  ScopedEnv(const char *n, const char *v) : name(n) {
    const char *o = std::getenv(n);
    had = o != nullptr;
    if (had)
      old = o;
    if (v)
      setenv(n, v, 1);
    else
      unsetenv(n);
  }
  ~ScopedEnv() {
    if (had)
      setenv(name.c_str(), old.c_str(), 1);
    else
      unsetenv(name.c_str());
  }
};

TEST(CommTimeout, DefaultIsSixtySeconds) {
  ScopedEnv e("DSRT_COMM_TIMEOUT", nullptr);
  double s = 0;
  std::string error;
  ASSERT_TRUE(timeoutFromEnvironment(s, error));
  EXPECT_EQ(60.0, s);
}

TEST(CommTimeout, ReadsFractionalSeconds) {
  ScopedEnv e("DSRT_COMM_TIMEOUT", "2.5");
  double s = 0;
  std::string error;
  ASSERT_TRUE(timeoutFromEnvironment(s, error));
  EXPECT_EQ(2.5, s);
  EXPECT_EQ("2.5", formatSeconds(s));
}

TEST(CommTimeout, RejectsWhatIsNotAPositiveNumber) {
  for (const char *bad : {"abc", "0", "-3", "5s", "inf", "nan"}) {
    ScopedEnv e("DSRT_COMM_TIMEOUT", bad);
    double s = 0;
    std::string error;
    EXPECT_FALSE(timeoutFromEnvironment(s, error)) << bad;
    EXPECT_EQ(std::string("DSRT_COMM_TIMEOUT: expected a positive number of "
                          "seconds, got '") +
                  bad + "'",
              error);
  }
}

TEST(CommLauncher, RecognizesMpiLaunchers) {
  ScopedEnv a("PMI_RANK", nullptr), b("PMIX_RANK", nullptr),
      c("OMPI_COMM_WORLD_RANK", nullptr);
  EXPECT_FALSE(launchedByMpi());
  ScopedEnv d("PMIX_RANK", "3");
  EXPECT_TRUE(launchedByMpi());
}

TEST(CommSingle, CollectivesAreLocal) {
  auto c = createSingle(60);
  EXPECT_EQ(0, c->rank());
  EXPECT_EQ(1, c->size());
  std::vector<float> v = {1.5f, -2.0f, 3.0f};
  ASSERT_EQ(DSRT_OK, c->allReduceSum(v.data(), 3));
  EXPECT_EQ((std::vector<float>{1.5f, -2.0f, 3.0f}), v);

  const char send[5] = "abcd";
  char recv[5] = {0};
  ASSERT_EQ(DSRT_OK, c->allGather(send, 4, recv));
  EXPECT_STREQ("abcd", recv);
  ASSERT_EQ(DSRT_OK, c->allGather(recv, 4, recv)); // in place
  EXPECT_STREQ("abcd", recv);

  int64_t out = 3, in = -1;
  ASSERT_EQ(DSRT_OK, c->allToAllCounts(&out, &in));
  EXPECT_EQ(3, in);
  int32_t rows[3] = {7, 8, 9}, got[3] = {0, 0, 0};
  ASSERT_EQ(DSRT_OK, c->allToAllV(rows, &out, got, &in, sizeof(int32_t)));
  EXPECT_EQ(8, got[1]);
  EXPECT_EQ(9, got[2]);
  ASSERT_EQ(DSRT_OK, c->broadcast(got, sizeof(got), 0));
  ASSERT_EQ(DSRT_OK, c->barrier());
  ASSERT_EQ(DSRT_OK, c->finalize());
}

TEST(CommSingle, MismatchedCountsAreAnError) {
  auto c = createSingle(60);
  int64_t out = 3, in = 2;
  int32_t rows[3] = {0, 0, 0};
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, c->allToAllV(rows, &out, rows, &in, 4));
  EXPECT_STREQ("all_to_all: send_rows[0] (3) != recv_rows[0] (2) on a single "
               "rank",
               dsrt_last_error());
}

TEST(CommSingle, ArgumentsAreCheckedFirst) {
  auto c = createSingle(60);
  float f = 0;
  int64_t neg = -1, zero = 0;
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, c->allReduceSum(&f, -2));
  EXPECT_STREQ("all_reduce: count must be >= 0, got -2", dsrt_last_error());
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, c->allGather(nullptr, 4, &f));
  EXPECT_STREQ("all_gather: send is NULL", dsrt_last_error());
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, c->allToAllCounts(&neg, &zero));
  EXPECT_STREQ("all_to_all_counts: send_rows[0] must be >= 0, got -1",
               dsrt_last_error());
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, c->allToAllV(&f, &zero, &f, nullptr, 4));
  EXPECT_STREQ("all_to_all: recv_rows is NULL", dsrt_last_error());
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, c->broadcast(&f, 4, -1));
  EXPECT_STREQ("broadcast: root -1 is not a rank (size 1)", dsrt_last_error());
  // Empty collectives need no buffers.
  EXPECT_EQ(DSRT_OK, c->allReduceSum(nullptr, 0));
  EXPECT_EQ(DSRT_OK, c->allToAllV(nullptr, &zero, nullptr, &zero, 4));
}

TEST(CommSingle, FinalizedCommunicatorRefusesWork) {
  auto c = createSingle(60);
  ASSERT_EQ(DSRT_OK, c->finalize());
  EXPECT_EQ(DSRT_OK, c->finalize()); // twice is fine
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, c->barrier());
  EXPECT_STREQ("barrier: the communicator is finalized", dsrt_last_error());
}

TEST(CommCApi, SingleThroughTheCApi) {
  ScopedEnv a("PMI_RANK", nullptr), b("PMIX_RANK", nullptr),
      c("OMPI_COMM_WORLD_RANK", nullptr), t("DSRT_COMM_TIMEOUT", "7");
  dsrt_comm *comm = nullptr;
  ASSERT_EQ(DSRT_OK, dsrt_comm_init(nullptr, &comm)) << dsrt_last_error();
  EXPECT_STREQ("single", dsrt_comm_backend(comm));
  EXPECT_EQ(0, dsrt_comm_rank(comm));
  EXPECT_EQ(1, dsrt_comm_size(comm));
  EXPECT_EQ(7.0, dsrt_comm_timeout(comm));
  float v[2] = {1, 2};
  EXPECT_EQ(DSRT_OK, dsrt_comm_all_reduce_sum_f32(comm, v, 2));
  EXPECT_EQ(DSRT_OK, dsrt_comm_finalize(comm));
  EXPECT_EQ(DSRT_OK, dsrt_comm_finalize(nullptr));
  EXPECT_EQ(-1, dsrt_comm_rank(nullptr));
  EXPECT_STREQ("", dsrt_comm_backend(nullptr));
}

TEST(CommCApi, BadBackendAndEnvironmentAreOneLine) {
  dsrt_comm *comm = reinterpret_cast<dsrt_comm *>(1);
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, dsrt_comm_init("gloo", &comm));
  EXPECT_EQ(nullptr, comm);
  EXPECT_STREQ("dsrt_comm_init: unknown backend 'gloo' (expected auto, "
               "single, mpi or nccl)",
               dsrt_last_error());
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, dsrt_comm_init("single", nullptr));
  ScopedEnv t("DSRT_COMM_TIMEOUT", "soon");
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, dsrt_comm_init("single", &comm));
  EXPECT_STREQ("DSRT_COMM_TIMEOUT: expected a positive number of seconds, "
               "got 'soon'",
               dsrt_last_error());
}

TEST(CommCApi, NullCommIsAnArgumentError) {
  float f = 0;
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, dsrt_comm_all_reduce_sum_f32(nullptr, &f, 1));
  EXPECT_STREQ("dsrt_comm_all_reduce_sum_f32: comm is NULL", dsrt_last_error());
  EXPECT_EQ(DSRT_ERROR_ARGUMENT, dsrt_comm_broadcast(nullptr, &f, 4, 0));
  EXPECT_STREQ("dsrt_comm_broadcast: comm is NULL", dsrt_last_error());
}

} // namespace
