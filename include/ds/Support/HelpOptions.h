//===- HelpOptions.h - what the tools' --help lists -------------*- C++ -*-===//
//
// The ds tools link LLVM, whose backends register ~400 command-line options
// (--amdgpu-*, --arm-*, Polly's, ...) that have nothing to do with them and
// buried the tools' own under --help. This moves those to --help-hidden and
// keeps MLIR's (--mlir-print-ir-after-all, --mlir-timing, ...: every pass
// inspectable), the tool's own category and the generic ones listed.
// (cl::HideUnrelatedOptions would unlist MLIR's too, and from --help-hidden
// as well.)
//
//===----------------------------------------------------------------------===//
#ifndef DS_SUPPORT_HELPOPTIONS_H
#define DS_SUPPORT_HELPOPTIONS_H

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/CommandLine.h"

namespace mlir::ds {

/// Hides every option registered so far that is not MLIR's (named mlir-*),
/// in `keep` (may be null), or --help / --help-list / --version. Options
/// registered later (an opt tool's passes) stay as they are.
inline void hideBackendOptions(llvm::cl::OptionCategory *keep = nullptr) {
  for (auto &entry : llvm::cl::getRegisteredOptions()) {
    llvm::StringRef name = entry.first;
    llvm::cl::Option *o = entry.second;
    if ((keep && llvm::is_contained(o->Categories, keep)) ||
        name.starts_with("mlir-") || name == "help" || name == "help-list" ||
        name == "version" ||
        o->getOptionHiddenFlag() != llvm::cl::NotHidden)
      continue;
    o->setHiddenFlag(llvm::cl::Hidden);
  }
}

} // namespace mlir::ds

#endif // DS_SUPPORT_HELPOPTIONS_H
