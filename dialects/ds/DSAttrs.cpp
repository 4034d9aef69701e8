//===- DSAttrs.cpp - ds configuration attributes --------------------------===//
#include "ds/DSDialect.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace mlir;
using namespace mlir::ds;

FailureOr<APFloat> mlir::ds::parseF64Parameter(AsmParser &parser) {
  double value;
  if (parser.parseFloat(value))
    return failure();
  return APFloat(value);
}

void mlir::ds::printF64Parameter(AsmPrinter &printer, const APFloat &value) {
  double v = value.convertToDouble();
  if (!std::isfinite(v)) {
    printer << (std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
    return;
  }
  // The shortest decimal text that parses back to the same double, so the IR
  // round-trips bit-exactly and stays readable (40.0, 0.3125, 1.0e-06).
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v)
      break;
  }
  // Ordinary magnitudes read better in fixed notation (10000.0, not 1e+04).
  double mag = std::fabs(v);
  if (mag >= 1e-4 && mag < 1e15) {
    char fixed[64];
    for (int digits = 1; digits <= 20; ++digits) {
      std::snprintf(fixed, sizeof(fixed), "%.*f", digits, v);
      if (std::strtod(fixed, nullptr) == v) {
        std::snprintf(buf, sizeof(buf), "%s", fixed);
        break;
      }
    }
  }
  std::string text(buf);
  // MLIR's float literal needs a '.' before any exponent.
  if (text.find('.') == std::string::npos) {
    size_t e = text.find('e');
    text.insert(e == std::string::npos ? text.size() : e, ".0");
  }
  printer << text;
}

std::string mlir::ds::formatF64(double value) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

FailureOr<YarnAttr> mlir::ds::parseYarnParameter(AsmParser &parser) {
  YarnAttr attr;
  if (parser.parseCustomAttributeWithFallback(attr))
    return failure();
  return attr;
}

FailureOr<bool> mlir::ds::parseBoolParameter(AsmParser &parser) {
  if (succeeded(parser.parseOptionalKeyword("true")))
    return true;
  if (succeeded(parser.parseOptionalKeyword("false")))
    return false;
  return parser.emitError(parser.getCurrentLocation(),
                          "expected 'true' or 'false'");
}

#define GET_ATTRDEF_CLASSES
#include "ds/DSAttrs.cpp.inc"

void DSDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "ds/DSAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// YarnAttr
//===----------------------------------------------------------------------===//

LogicalResult YarnAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               APFloat factorF, int64_t originalMax,
                               APFloat betaFastF, APFloat betaSlowF,
                               APFloat mscaleF, APFloat mscaleAllDimF) {
  double factor = factorF.convertToDouble();
  double betaFast = betaFastF.convertToDouble();
  double betaSlow = betaSlowF.convertToDouble();
  double mscale = mscaleF.convertToDouble();
  double mscaleAllDim = mscaleAllDimF.convertToDouble();
  if (!(factor > 0))
    return emitError() << "yarn factor (" << formatF64(factor) << ") must be positive";
  if (originalMax <= 0)
    return emitError() << "yarn original_max_position_embeddings ("
                       << originalMax << ") must be positive";
  if (!(betaFast > 0) || !(betaSlow > 0))
    return emitError() << "yarn beta_fast (" << formatF64(betaFast) << ") and beta_slow ("
                       << formatF64(betaSlow) << ") must be positive";
  // HF's cos/sin factor is mscale/mscale_all_dim; every released model has
  // them equal (factor 1). Anything else would silently change the math.
  if (mscaleAllDim != 0 && mscale != mscaleAllDim)
    return emitError() << "yarn mscale (" << formatF64(mscale)
                       << ") must equal mscale_all_dim (" << formatF64(mscaleAllDim)
                       << ")";
  return success();
}

double YarnAttr::getSoftmaxMscale() const {
  double s = getFactor().convertToDouble();
  double allDim = getMscaleAllDim().convertToDouble();
  if (allDim == 0 || s <= 1)
    return 1.0;
  return 0.1 * allDim * std::log(s) + 1.0;
}

//===----------------------------------------------------------------------===//
// MLAConfigAttr
//===----------------------------------------------------------------------===//

LogicalResult
MLAConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                      int64_t numHeads, std::optional<int64_t> qLoraRank,
                      int64_t kvLoraRank, int64_t nope, int64_t rope,
                      int64_t vDim, APFloat softmaxScaleF,
                      APFloat ropeThetaF, YarnAttr) {
  double softmaxScale = softmaxScaleF.convertToDouble();
  double ropeTheta = ropeThetaF.convertToDouble();
  auto positive = [&](StringRef name, int64_t v) -> LogicalResult {
    if (v > 0)
      return success();
    return emitError() << "mla " << name << " (" << v << ") must be positive";
  };
  if (failed(positive("num_heads", numHeads)) ||
      failed(positive("kv_lora_rank", kvLoraRank)) ||
      failed(positive("qk_nope_head_dim", nope)) ||
      failed(positive("qk_rope_head_dim", rope)) ||
      failed(positive("v_head_dim", vDim)))
    return failure();
  if (qLoraRank && failed(positive("q_lora_rank", *qLoraRank)))
    return failure();
  // RoPE rotates interleaved pairs (x[2i], x[2i+1]).
  if (rope % 2 != 0)
    return emitError() << "mla qk_rope_head_dim (" << rope
                       << ") must be even: RoPE rotates pairs";
  if (!(softmaxScale > 0))
    return emitError() << "mla softmax_scale (" << formatF64(softmaxScale)
                       << ") must be positive";
  if (!(ropeTheta > 0))
    return emitError() << "mla rope_theta (" << formatF64(ropeTheta)
                       << ") must be positive";
  return success();
}

//===----------------------------------------------------------------------===//
// MoEConfigAttr
//===----------------------------------------------------------------------===//

LogicalResult MoEConfigAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, int64_t numExperts,
    int64_t topK, int64_t nGroup, int64_t topkGroup, ScoringFunc,
    TopkMethod method, bool, APFloat scaleF, NormRule, int64_t intermediate,
    int64_t nShared) {
  double scale = scaleF.convertToDouble();
  if (numExperts <= 0)
    return emitError() << "moe num_experts (" << numExperts
                       << ") must be positive";
  if (topK <= 0)
    return emitError() << "moe top_k (" << topK << ") must be positive";
  if (topK > numExperts)
    return emitError() << "top_k (" << topK << ") must be <= num_experts ("
                       << numExperts << ")";
  if (nGroup <= 0 || topkGroup <= 0)
    return emitError() << "moe n_group (" << nGroup << ") and topk_group ("
                       << topkGroup << ") must be positive";
  if (intermediate <= 0)
    return emitError() << "moe intermediate_size (" << intermediate
                       << ") must be positive";
  if (nShared < 0)
    return emitError() << "moe n_shared_experts (" << nShared
                       << ") must be >= 0";
  if (!(scale > 0))
    return emitError() << "moe routed_scaling_factor (" << formatF64(scale)
                       << ") must be positive";
  if (method == TopkMethod::greedy)
    return success(); // greedy ignores the groups.
  if (topkGroup > nGroup)
    return emitError() << "topk_group (" << topkGroup
                       << ") must be <= n_group (" << nGroup << ")";
  if (numExperts % nGroup != 0)
    return emitError() << "num_experts (" << numExperts
                       << ") must be divisible by n_group (" << nGroup << ")";
  int64_t perGroup = numExperts / nGroup;
  if (topkGroup * perGroup < topK)
    return emitError() << "grouped routing cannot fill top_k (" << topK
                       << "): topk_group (" << topkGroup << ") x experts per "
                       << "group (" << perGroup << ") = "
                       << topkGroup * perGroup;
  if (method == TopkMethod::noaux_tc && perGroup < 2)
    return emitError() << "noaux_tc scores a group by its top-2 experts: "
                          "experts per group ("
                       << perGroup << ") must be >= 2";
  return success();
}
