//===- Isa.cpp - which vector instructions the CPU kernels use ------------===//
#include "cpu/Isa.h"
#include "cpu/Kernels.h"

#include <cstdlib>

using namespace dsrt::cpu;

namespace {
/// Every path, in Isa's order.
constexpr Isa kIsas[] = {Isa::Scalar,     Isa::Avx2,       Isa::Avx512,
                         Isa::Avx512Bf16, Isa::Avx512Vbmi, Isa::Amx};
} // namespace

const char *dsrt::cpu::isaName(Isa isa) {
  switch (isa) {
  case Isa::Scalar:
    return "scalar";
  case Isa::Avx2:
    return "avx2";
  case Isa::Avx512:
    return "avx512";
  case Isa::Avx512Bf16:
    return "avx512bf16";
  case Isa::Avx512Vbmi:
    return "avx512vbmi";
  case Isa::Amx:
    return "amx";
  }
  return "?";
}

bool dsrt::cpu::parseIsa(const std::string &name, Isa &out) {
  for (Isa isa : kIsas)
    if (name == isaName(isa)) {
      out = isa;
      return true;
    }
  return false;
}

bool dsrt::cpu::isaSupported(Isa isa) {
#if defined(__x86_64__)
  // The CPU model is filled in by a constructor, and this may run in
  // another one (streamNonTemporal's): fill it in first (idempotent).
  __builtin_cpu_init();
  switch (isa) {
  case Isa::Scalar:
    return true;
  case Isa::Avx2:
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  case Isa::Avx512:
    return isaSupported(Isa::Avx2) && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  case Isa::Avx512Bf16:
    return isaSupported(Isa::Avx512) && __builtin_cpu_supports("avx512bf16");
  case Isa::Avx512Vbmi:
    return isaSupported(Isa::Avx512Bf16) &&
           __builtin_cpu_supports("avx512vbmi");
  case Isa::Amx:
    return isaSupported(Isa::Avx512Vbmi) && amxAvailable();
  }
  return false;
#else
  return isa == Isa::Scalar;
#endif
}

std::vector<Isa> dsrt::cpu::supportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : kIsas)
    if (isaSupported(isa))
      out.push_back(isa);
  return out;
}

Isa dsrt::cpu::detectedIsa() {
  static const Isa best = supportedIsas().back();
  return best;
}

const char *dsrt::cpu::streamPrefetchName(StreamPrefetch hint) {
  return hint == StreamPrefetch::NonTemporal ? "nta" : "t0";
}

bool dsrt::cpu::parseStreamPrefetch(const std::string &name,
                                    StreamPrefetch &out) {
  for (StreamPrefetch hint : {StreamPrefetch::NonTemporal, StreamPrefetch::L1})
    if (name == streamPrefetchName(hint)) {
      out = hint;
      return true;
    }
  return false;
}

StreamPrefetch dsrt::cpu::detectedStreamPrefetch() {
#if defined(__x86_64__)
  __builtin_cpu_init(); // as in isaSupported
  if (__builtin_cpu_is("amd"))
    return StreamPrefetch::NonTemporal;
#endif
  return StreamPrefetch::L1;
}

namespace {
struct Configured {
  Isa isa = Isa::Scalar;
  StreamPrefetch prefetch = StreamPrefetch::L1;
  std::string error;
};

void configurePrefetch(Configured &c) {
  c.prefetch = detectedStreamPrefetch();
  const char *env = std::getenv("DSRT_CPU_PREFETCH");
  if (!env || !*env)
    return;
  // parseStreamPrefetch leaves c.prefetch as detected where it fails.
  if (parseStreamPrefetch(env, c.prefetch))
    return;
  if (c.error.empty())
    c.error = std::string("DSRT_CPU_PREFETCH='") + env +
              "' is unknown (expected nta or t0)";
}

const Configured &configured() {
  static const Configured c = [] {
    Configured c;
    c.isa = detectedIsa();
    configurePrefetch(c);
    const char *env = std::getenv("DSRT_CPU_ISA");
    if (!env || !*env)
      return c;
    Isa want;
    if (!parseIsa(env, want))
      c.error = std::string("DSRT_CPU_ISA='") + env +
                "' is unknown (expected scalar, avx2, avx512, avx512bf16, "
                "avx512vbmi or amx)";
    else if (!isaSupported(want))
      c.error = std::string("DSRT_CPU_ISA='") + env +
                "': this CPU does not have those instructions (best: " +
                isaName(detectedIsa()) + ")";
    else
      c.isa = want;
    return c;
  }();
  return c;
}
} // namespace

std::string dsrt::cpu::configureIsa() { return configured().error; }
Isa dsrt::cpu::activeIsa() { return configured().isa; }
StreamPrefetch dsrt::cpu::activeStreamPrefetch() {
  return configured().prefetch;
}

const bool dsrt::cpu::streamNonTemporal =
    activeStreamPrefetch() == StreamPrefetch::NonTemporal;
