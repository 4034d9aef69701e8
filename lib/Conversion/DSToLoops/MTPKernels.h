//===- MTPKernels.h - loop nests of the MTP ops -----------------*- C++ -*-===//
//
// Kept apart from the other kernels: the MTP module adds one op of its own
// (ds.mtp_concat); everything else it runs is an ordinary decoder layer.
//
//===----------------------------------------------------------------------===//
#ifndef DS_CONVERSION_DSTOLOOPS_MTPKERNELS_H
#define DS_CONVERSION_DSTOLOOPS_MTPKERNELS_H

#include "KernelEmitter.h"

namespace mlir::ds::loops {

/// out[t] = concat(positions[t] == 0 ? 0 : e[t], h[t]) over [T, D] buffers
/// into a [T, 2D] buffer, as one outlined kernel.
void emitMTPConcat(KernelEmitter &k, Value e, Value h, Value positions,
                   Value out);

} // namespace mlir::ds::loops

#endif // DS_CONVERSION_DSTOLOOPS_MTPKERNELS_H
