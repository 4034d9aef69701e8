//===- DSAttrs.td - ds configuration attributes ----------------*- tablegen -*-===//
#ifndef DS_ATTRS_TD
#define DS_ATTRS_TD

include "ds/DSBase.td"

def DS_ScoringFunc : I32EnumAttr<"ScoringFunc", "router scoring function", [
    I32EnumAttrCase<"softmax", 0>, I32EnumAttrCase<"sigmoid", 1>]> {
  let cppNamespace = "::mlir::ds";
  let genSpecializedAttr = 0;
}
def DS_TopkMethod : I32EnumAttr<"TopkMethod", "expert selection method", [
    I32EnumAttrCase<"greedy", 0>, I32EnumAttrCase<"group_limited_greedy", 1>,
    I32EnumAttrCase<"noaux_tc", 2>]> {
  let cppNamespace = "::mlir::ds";
  let genSpecializedAttr = 0;
}
def DS_NormRule : I32EnumAttr<"NormRule",
    "routing weight normalisation rule (DeepSeek V2 or V3 semantics)", [
    I32EnumAttrCase<"v2", 0>, I32EnumAttrCase<"v3", 1>]> {
  let cppNamespace = "::mlir::ds";
  let genSpecializedAttr = 0;
}

def DS_YarnAttr : DS_Attr<"Yarn", "yarn"> {
  let summary = "YaRN RoPE scaling parameters (rope_scaling.type == yarn)";
  let description = [{
    Frequency interpolation and the softmax correction of SEMANTICS.md.
    Only configurations with `mscale == mscale_all_dim` (or `mscale_all_dim`
    0, meaning no correction) are accepted, as released models have.

    ```mlir
    #ds.yarn<factor = 40.0, original_max_position_embeddings = 4096,
             beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>
    ```
  }];
  let parameters = (ins
    DS_F64Parameter<"scaling factor s">:$factor,
    "int64_t":$original_max_position_embeddings,
    DS_F64Parameter<"beta_fast">:$beta_fast,
    DS_F64Parameter<"beta_slow">:$beta_slow,
    DS_F64Parameter<"mscale">:$mscale,
    DS_F64Parameter<"mscale_all_dim">:$mscale_all_dim
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// m = 0.1 * mscale_all_dim * ln(s) + 1 (1 when s <= 1 or no mscale_all_dim).
    double getSoftmaxMscale() const;
  }];
}

// Printed with its `#ds.yarn` prefix, so a nested configuration reads the same
// as a standalone one.
def DS_YarnParameter : AttrParameter<"::mlir::ds::YarnAttr", "YaRN scaling"> {
  let parser = "::mlir::ds::parseYarnParameter($_parser)";
  let printer = "$_printer.printAttribute($_self)";
  let defaultValue = "::mlir::ds::YarnAttr()";
}

def DS_MLAConfigAttr : DS_Attr<"MLAConfig", "mla_config"> {
  let summary = "configuration of one Multi-head Latent Attention block";
  let description = [{
    Everything an MLA block needs besides its weights. `q_lora_rank` is absent
    for checkpoints that project queries directly (`q_proj`, V2-Lite).
    `softmax_scale` already includes the YaRN mscale^2 correction.

    ```mlir
    #ds.mla_config<num_heads = 128, q_lora_rank = 1536, kv_lora_rank = 512,
                   qk_nope_head_dim = 128, qk_rope_head_dim = 64, v_head_dim = 128,
                   softmax_scale = 0.1147, rope_theta = 10000.0,
                   rope_scaling = #ds.yarn<...>>
    ```
  }];
  let parameters = (ins
    "int64_t":$num_heads,
    OptionalParameter<"std::optional<int64_t>">:$q_lora_rank,
    "int64_t":$kv_lora_rank,
    "int64_t":$qk_nope_head_dim,
    "int64_t":$qk_rope_head_dim,
    "int64_t":$v_head_dim,
    DS_F64Parameter<"softmax scale, mscale^2 included">:$softmax_scale,
    DS_F64Parameter<"RoPE base">:$rope_theta,
    DS_YarnParameter:$rope_scaling
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getQkHeadDim() const { return getQkNopeHeadDim() + getQkRopeHeadDim(); }
    /// Values cached per token: the latent plus the shared rope key.
    int64_t getLatentCacheWidth() const { return getKvLoraRank() + getQkRopeHeadDim(); }
  }];
}

def DS_MoEConfigAttr : DS_Attr<"MoEConfig", "moe_config"> {
  let summary = "configuration of one Mixture-of-Experts block";
  let description = [{
    Routing (scoring function, top-k method, groups, normalisation) and the
    expert shapes. `norm_rule` selects DeepSeek V2's or V3's rule for
    normalising and scaling the routing weights (SEMANTICS.md).

    ```mlir
    #ds.moe_config<num_experts = 256, top_k = 8, n_group = 8, topk_group = 4,
                   scoring_func = sigmoid, topk_method = noaux_tc,
                   norm_topk_prob = true, routed_scaling_factor = 2.5,
                   norm_rule = v3, intermediate_size = 2048, n_shared_experts = 1>
    ```
  }];
  let parameters = (ins
    "int64_t":$num_experts,
    "int64_t":$top_k,
    "int64_t":$n_group,
    "int64_t":$topk_group,
    EnumParameter<DS_ScoringFunc>:$scoring_func,
    EnumParameter<DS_TopkMethod>:$topk_method,
    DS_BoolParameter<"normalise the top-k weights">:$norm_topk_prob,
    DS_F64Parameter<"routed_scaling_factor">:$routed_scaling_factor,
    EnumParameter<DS_NormRule>:$norm_rule,
    "int64_t":$intermediate_size,
    "int64_t":$n_shared_experts
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    bool isGrouped() const { return getTopkMethod() != TopkMethod::greedy; }
    bool hasBias() const { return getTopkMethod() == TopkMethod::noaux_tc; }
  }];
}

#endif // DS_ATTRS_TD
