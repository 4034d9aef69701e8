//===- DSDialect.h - the ds dialect -----------------------------*- C++ -*-===//
#ifndef DS_DSDIALECT_H
#define DS_DSDIALECT_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "ds/DSDialect.h.inc"
#include "ds/DSEnums.h.inc"

namespace mlir::ds {
// Parameter (de)serialisers used by the generated attribute printers.
FailureOr<llvm::APFloat> parseF64Parameter(AsmParser &parser);
void printF64Parameter(AsmPrinter &printer, const llvm::APFloat &value);
FailureOr<bool> parseBoolParameter(AsmParser &parser);
/// Shortest "%g"-style text of a double, for diagnostics.
std::string formatF64(double value);
class YarnAttr;
FailureOr<YarnAttr> parseYarnParameter(AsmParser &parser);
} // namespace mlir::ds

#define GET_ATTRDEF_CLASSES
#include "ds/DSAttrs.h.inc"
#define GET_TYPEDEF_CLASSES
#include "ds/DSTypes.h.inc"
#define GET_OP_CLASSES
#include "ds/DSOps.h.inc"

#endif // DS_DSDIALECT_H
