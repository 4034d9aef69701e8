//===- Watchdog.cpp - a deadline for calls that only block ----------------===//
#include "comm/Communicator.h"
#include "comm/JobAbort.h"

#include <chrono>

using namespace dsrt::comm;

Watchdog::Watchdog(double seconds, std::string message) {
  thread_ = std::thread([this, seconds, message = std::move(message)] {
    std::unique_lock<std::mutex> lock(mu_);
    bool finished = cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                                 [this] { return done_; });
    if (!finished)
      abortJob(message);
  });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_one();
  thread_.join();
}
