//===- CacheCodec.h - FP8 latent cache element encode/decode ----*- C++ -*-===//
//
// The arithmetic of the FP8 latent cache (!ds.latent_cache with element
// type f8E4M3FN), shared by the loop kernels (convert-ds-to-loops) and the
// GPU split-KV attention kernel. Everything is integer/f32 arith ops:
// neither the CPU nor the NVVM lowering has an fp8 type to convert through.
// Cache rows are bytes (memref<... x i8>); multi-byte values are little
// endian, as on every target the runtime supports.
//
//===----------------------------------------------------------------------===//
#ifndef DS_CONVERSION_CACHECODEC_H
#define DS_CONVERSION_CACHECODEC_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/Value.h"

#include <cstdint>

namespace mlir::ds::codec {

/// The largest finite e4m3 (fn) magnitude; group scales are amax / 448.
constexpr double kE4M3Max = 448.0;

/// The value of e4m3 (fn) code `code` (what decodeE4M3 computes), for
/// tables; 0x7f / 0xff (NaN) decode as +-480, never written.
double e4m3Value(uint8_t code);

/// e4m3 byte(s) (i8 or vector<N x i8>) -> f32 (or vector<N x f32>), exact.
Value decodeE4M3(OpBuilder &b, Location loc, Value bytes);

/// f32 -> e4m3 byte, rounded to nearest even, saturated to +-448 (the
/// fn format has no infinity; 0x7f/0xff are NaN and never produced).
Value encodeE4M3(OpBuilder &b, Location loc, Value x);

/// The f32 at bytes [off, off + 4) of `row` (a memref of i8 whose last
/// index is `off`; `prefix` addresses the row).
Value loadF32Bytes(OpBuilder &b, Location loc, Value mem, ValueRange prefix,
                   Value off);
/// Stores `v` there; `off` must be 4-byte aligned in memory (one store).
void storeF32Bytes(OpBuilder &b, Location loc, Value v, Value mem,
                   ValueRange prefix, Value off);
/// A bf16 stored at bytes [off, off + 2), read back as f32 (exact).
Value loadBF16Bytes(OpBuilder &b, Location loc, Value mem, ValueRange prefix,
                    Value off);
/// f32 -> its bf16 (nearest even, as arith.truncf; NaN stays a quiet NaN)
/// in the low 16 bits of an i32, by integer arithmetic alone.
Value bf16Bits(OpBuilder &b, Location loc, Value v);
/// f32 rounded to bf16 (bf16Bits) into two bytes, any alignment.
void storeBF16Bytes(OpBuilder &b, Location loc, Value v, Value mem,
                    ValueRange prefix, Value off);

} // namespace mlir::ds::codec

#endif // DS_CONVERSION_CACHECODEC_H
