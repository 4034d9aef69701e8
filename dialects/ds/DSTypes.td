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

    ```mlir
    !ds.latent_cache<num_layers = 61, width = 576, element_type = bf16>
    ```
  }];
  let parameters = (ins "int64_t":$num_layers, "int64_t":$width,
                        "::mlir::Type":$element_type);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // DS_TYPES_TD
