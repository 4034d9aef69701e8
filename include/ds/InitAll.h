//===- InitAll.h - everything ds tools register -----------------*- C++ -*-===//
#ifndef DS_INITALL_H
#define DS_INITALL_H

namespace mlir {
class DialectRegistry;
namespace ds {
/// The ds dialect and the upstream dialects we lower through, with the
/// external interface models their lowering needs.
void registerAllDialects(DialectRegistry &registry);
/// The ds passes and the upstream passes ds-opt exposes.
void registerAllPasses();
} // namespace ds
} // namespace mlir

#endif // DS_INITALL_H
