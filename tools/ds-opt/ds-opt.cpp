//===- ds-opt.cpp - mlir-opt for the ds dialect ---------------------------===//
#include "ds/InitAll.h"
#include "ds/Support/HelpOptions.h"
#include "ds/Support/NestingGuard.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::ds::registerAllDialects(registry);
  mlir::ds::registerAllPasses();
  // Before MLIR's tool options and the passes are registered: those stay
  // listed, LLVM's backend options move to --help-hidden.
  mlir::ds::hideBackendOptions();
  auto [input, output] = mlir::registerAndParseCLIOptions(
      argc, argv, "ds optimizer driver\n", registry);
  // An empty file parses as an empty module upstream; for ds it is always a
  // mistake (a truncated or missing export), so say so.
  std::string error;
  auto file = mlir::openInputFile(input, &error);
  if (!file) {
    llvm::errs() << "ds-opt: error: " << error << "\n";
    return 1;
  }
  if (file->getBuffer().trim().empty()) {
    llvm::errs() << "ds-opt: error: input '" << input << "' is empty\n";
    return 1;
  }
  std::string nesting = mlir::ds::checkNesting(file->getBuffer());
  if (!nesting.empty()) {
    llvm::errs() << "ds-opt: error: input '" << input << "': " << nesting
                 << "\n";
    return 1;
  }
  auto out = mlir::openOutputFile(output, &error);
  if (!out) {
    llvm::errs() << "ds-opt: error: " << error << "\n";
    return 1;
  }
  auto config = mlir::MlirOptMainConfig::createFromCLOptions();
  if (failed(mlir::MlirOptMain(out->os(), std::move(file), registry, config)))
    return 1;
  out->keep();
  return 0;
}
