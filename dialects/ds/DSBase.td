//===- DSBase.td - the ds dialect ------------------------------*- tablegen -*-===//
#ifndef DS_BASE_TD
#define DS_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def DS_Dialect : Dialect {
  let name = "ds";
  let cppNamespace = "::mlir::ds";
  let summary = "DeepSeek-style models: Multi-head Latent Attention and MoE";
  let description = [{
    The `ds` dialect describes a DeepSeek V2/V3 model at the level its
    architecture is defined: MLA and MoE are single ops carrying their whole
    configuration, weights are named references into a checkpoint (never
    inline data), and the decode cache is a latent cache type. Passes rewrite
    these ops towards kernels; see ../shared/SEMANTICS.md for the math.
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
    void registerTypes();
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

class DS_Op<string mnemonic, list<Trait> traits = []>
    : Op<DS_Dialect, mnemonic, traits>;
class DS_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<DS_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}
class DS_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<DS_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

// A double printed as a plain number (`factor = 40.0`), never as a typed
// FloatAttr, so configurations stay readable.
class DS_F64Parameter<string desc> : APFloatParameter<desc> {
  let parser = "::mlir::ds::parseF64Parameter($_parser)";
  let printer = "::mlir::ds::printF64Parameter($_printer, $_self)";
}
// A bool printed as `true` / `false` (the default would parse an integer).
class DS_BoolParameter<string desc> : AttrParameter<"bool", desc> {
  let parser = "::mlir::ds::parseBoolParameter($_parser)";
  let printer = "$_printer << ($_self ? \"true\" : \"false\")";
}

// Activations are f32 at the model level; the compile dtype is applied by
// later passes. Weights keep the checkpoint's element type.
def DS_Activation : RankedTensorOf<[F32]>;
def DS_WeightTensor : RankedTensorOf<[F32, F16, BF16, F8E4M3FN]>;
def DS_TokenTensor : 1DTensorOf<[I32]>;

#endif // DS_BASE_TD
