//===- DSDialect.cpp - the ds dialect -------------------------------------===//
#include "ds/DSDialect.h"

using namespace mlir;
using namespace mlir::ds;

#include "ds/DSDialect.cpp.inc"
#include "ds/DSEnums.cpp.inc"

void DSDialect::initialize() {
  registerAttributes();
  registerTypes();
  addOperations<
#define GET_OP_LIST
#include "ds/DSOps.cpp.inc"
      >();
}
