//===- ConfigFuzzer.cpp - fuzz config.json import -------------------------===//
//
// Parses the input as a config.json; accepted configs small enough to build
// are imported to ds IR, which must verify.
//
//===----------------------------------------------------------------------===//
#include "OneLineCheck.h"
#include "ds/DSDialect.h"
#include "ds/Import/ImportModel.h"
#include "ds/Import/ModelConfig.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include <cstdlib>

// LLVM's allocators poison their free space when the including code is
// built with ASan; Debian's libMLIR is not, and its (correct) writes into
// that space would be reported. Ignore manual poisoning, keep the rest.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  auto cfg = mlir::ds::parseModelConfig(text, "fuzz/config.json");
  if (!cfg) {
    requireOneLine(llvm::toString(cfg.takeError()));
    return 0;
  }
  // Keep the IR small: the fuzzer is after parser/validation bugs.
  if (cfg->numHiddenLayers > 4 || cfg->nRoutedExperts > 64 ||
      cfg->hiddenSize > 4096 || cfg->vocabSize > 1 << 20)
    return 0;
  static mlir::MLIRContext *ctx = [] {
    auto *c = new mlir::MLIRContext(mlir::MLIRContext::Threading::DISABLED);
    c->loadDialect<mlir::ds::DSDialect, mlir::func::FuncDialect>();
    c->getDiagEngine().registerHandler([](mlir::Diagnostic &) {
      return mlir::success();
    });
    return c;
  }();
  auto module = mlir::ds::importModel(ctx, *cfg);
  if (failed(mlir::verify(*module)))
    std::abort(); // a config the reader accepts must import to valid IR
  return 0;
}
