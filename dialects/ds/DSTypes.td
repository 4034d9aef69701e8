//===- DSTypes.td - ds types -----------------------------------*- tablegen -*-===//
#ifndef DS_TYPES_TD
#define DS_TYPES_TD

include "ds/DSBase.td"
include "mlir/IR/BuiltinTypeInterfaces.td"

def DS_LatentCacheType : DS_Type<"LatentCache", "latent_cache"> {
  let summary = "the decode cache of a whole model: latent + rope key per token";
  let description = [{
    One entry per token per layer of `width` values: the normalised latent
    (kv_lora_rank) followed by the roped shared key (qk_rope_head_dim). Its
    capacity in tokens is chosen by the runtime. Ops that write it return the
    updated cache, so data flow through the layers stays explicit.

    `element_type` f32, bf16 or f16 stores every value in that type.
    `element_type = f8E4M3FN` is the FP8 layout FlashMLA uses for DeepSeek:
    the latent as e4m3 with one f32 scale per `scale_group` values, the
    last `rope_width` values (the rope key) as bf16. A row is then, in
    bytes: latent e4m3 | (latent / scale_group) f32 scales | rope bf16,
    656 bytes for V3 (512 + 4 x 4 + 64 x 2). The two layout parameters are
    absent (0) for the other element types.

    ```mlir
    !ds.latent_cache<num_layers = 61, width = 576, element_type = bf16>
    !ds.latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN,
                     rope_width = 64, scale_group = 128>
    ```
  }];
  let parameters = (ins "int64_t":$num_layers, "int64_t":$width,
                        "::mlir::Type":$element_type,
                        DefaultValuedParameter<"int64_t", "0">:$rope_width,
                        DefaultValuedParameter<"int64_t", "0">:$scale_group);
  let builders = [
    TypeBuilder<(ins "int64_t":$numLayers, "int64_t":$width,
                     "::mlir::Type":$elementType), [{
      return $_get($_ctxt, numLayers, width, elementType, 0, 0);
    }]>
  ];
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The FP8 layout (e4m3 latent + f32 group scales + bf16 rope).
    bool isFp8() const {
      return ::llvm::isa<::mlir::Float8E4M3FNType>(getElementType());
    }
    /// Values of the latent part of a row (kv_lora_rank) for the fp8
    /// layout; the other types do not split their rows (width).
    int64_t getLatentWidth() const {
      return isFp8() ? getWidth() - getRopeWidth() : getWidth();
    }
    /// Bytes of one token's row of one layer.
    int64_t getRowBytes() const;
  }];
}

def DS_PagedLatentCacheType : DS_Type<"PagedLatentCache", "paged_latent_cache"> {
  let summary = "the latent cache of many sequences, in pages of 64 tokens";
  let description = [{
    The rows of `!ds.latent_cache` (`width` values per token per layer: the
    normalised latent, then the roped shared key) stored in fixed-size
    pages, FlashMLA's layout: a page holds `page_size` consecutive tokens of
    one sequence for one layer, and a sequence finds its pages through a
    block table (`block_tables[seq, pos / page_size]`, slot
    `pos % page_size`). The number of pages is chosen by the runtime (the
    serving engine's page pool); pages are shared between sequences that
    start with the same tokens (prefix caching).

    `element_type = f8E4M3FN` stores each row in `!ds.latent_cache`'s FP8
    layout (e4m3 latent | one f32 scale per `scale_group` latent values |
    bf16 rope key, `rope_width` values), so a page is page_size rows of
    that many bytes (656 x 64 for V3), as FlashMLA pages it.

    ```mlir
    !ds.paged_latent_cache<num_layers = 61, width = 576, element_type = bf16>
    !ds.paged_latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN,
                           rope_width = 64, scale_group = 128>
    ```
    (`page_size = 64` is the default, left out when printed; no other size
    verifies.)
  }];
  let parameters = (ins "int64_t":$num_layers, "int64_t":$width,
                        "::mlir::Type":$element_type,
                        DefaultValuedParameter<"int64_t", "64">:$page_size,
                        DefaultValuedParameter<"int64_t", "0">:$rope_width,
                        DefaultValuedParameter<"int64_t", "0">:$scale_group);
  let builders = [
    TypeBuilder<(ins "int64_t":$numLayers, "int64_t":$width,
                     "::mlir::Type":$elementType, "int64_t":$pageSize), [{
      return $_get($_ctxt, numLayers, width, elementType, pageSize, 0, 0);
    }]>
  ];
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    bool isFp8() const {
      return ::llvm::isa<::mlir::Float8E4M3FNType>(getElementType());
    }
    /// The row layout, shared with the contiguous cache of the same shape.
    LatentCacheType getRowType() const {
      return LatentCacheType::get(getContext(), getNumLayers(), getWidth(),
                                  getElementType(), getRopeWidth(),
                                  getScaleGroup());
    }
    /// Bytes of one token's row of one layer.
    int64_t getRowBytes() const { return getRowType().getRowBytes(); }
  }];
}

def DS_PagedKVCacheType : DS_Type<"PagedKVCache", "paged_kv_cache"> {
  let summary = "per-head keys and values of many sequences, in pages of 64 tokens";
  let description = [{
    What a multi-head attention deployment keeps instead of the latent
    (ds-compile --kv-layout=per-head; the capacity comparison of
    bench/kv_layout.py): for every token of every layer, each head's key
    (`key_width` = qk_nope_head_dim + qk_rope_head_dim, the shared rope key
    stored again for every head) and value (`value_width` = v_head_dim),
    expanded from the latent through kv_b_proj when the token is written.
    A row is the keys of heads 0..num_heads-1, then their values:
    num_heads x (key_width + value_width) elements, against the latent
    layout's kv_lora_rank + qk_rope_head_dim. Pages and block tables as
    `!ds.paged_latent_cache` (page_size = 64, left out when printed).
    f32, bf16 or f16 elements (no fp8 codec for this layout).

    ```mlir
    !ds.paged_kv_cache<num_layers = 61, num_heads = 128, key_width = 192,
                       value_width = 128, element_type = bf16>
    ```
  }];
  let parameters = (ins "int64_t":$num_layers, "int64_t":$num_heads,
                        "int64_t":$key_width, "int64_t":$value_width,
                        "::mlir::Type":$element_type,
                        DefaultValuedParameter<"int64_t", "64">:$page_size);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Elements of one token's row of one layer: every head's key, then
    /// every head's value.
    int64_t getRowWidth() const {
      return getNumHeads() * (getKeyWidth() + getValueWidth());
    }
  }];
}

// What an attention op or an entry point may carry as its cache.
def DS_AnyLatentCache : AnyTypeOf<[DS_LatentCacheType, DS_PagedLatentCacheType],
                                  "latent cache (contiguous or paged)">;
// What ds.mla may read and write: a latent cache, or (--kv-layout=per-head)
// pages of per-head keys and values.
def DS_AnyMLACache : AnyTypeOf<[DS_LatentCacheType, DS_PagedLatentCacheType,
                                DS_PagedKVCacheType],
                               "latent cache (contiguous or paged) or paged "
                               "per-head K/V cache">;

#endif // DS_TYPES_TD
