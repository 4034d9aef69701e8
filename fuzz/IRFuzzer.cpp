//===- IRFuzzer.cpp - fuzz ds IR parsing and verification -----------------===//
#include "ds/DSDialect.h"
#include "ds/Support/NestingGuard.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

// LLVM's allocators poison their free space when the including code is
// built with ASan; Debian's libMLIR is not, and its (correct) writes into
// that space would be reported. Ignore manual poisoning, keep the rest.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *ctx = [] {
    auto *c = new mlir::MLIRContext(mlir::MLIRContext::Threading::DISABLED);
    c->loadDialect<mlir::ds::DSDialect, mlir::func::FuncDialect,
                   mlir::arith::ArithDialect, mlir::tensor::TensorDialect>();
    c->getDiagEngine().registerHandler([](mlir::Diagnostic &) {
      return mlir::success();
    });
    return c;
  }();
  // MLIR's lexer relies on the NUL that every file buffer carries; fuzzer
  // inputs have none, so give them one (as ds-opt's file reading does).
  std::string text(reinterpret_cast<const char *>(data), size);
  if (!mlir::ds::checkNesting(text).empty())
    return 0; // the tools refuse these before parsing
  mlir::ParserConfig config(ctx);
  auto module = mlir::parseSourceString<mlir::ModuleOp>(text, config);
  if (module)
    (void)mlir::verify(*module);
  return 0;
}
