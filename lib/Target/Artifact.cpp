//===- Artifact.cpp - the ds artifact: manifest + native code -------------===//
#include "ds/Target/Artifact.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

using namespace mlir;
using namespace mlir::ds;

static std::string dtypeName(Type t) {
  if (t.isF32())
    return "F32";
  if (t.isF16())
    return "F16";
  if (t.isBF16())
    return "BF16";
  if (isa<Float8E4M3FNType>(t))
    return "F8_E4M3";
  return "UNKNOWN";
}

std::string mlir::ds::buildManifest(ModuleOp m, const ManifestInputs &in,
                                    const std::string &cacheDtype,
                                    int64_t numLayers, int64_t cacheWidth,
                                    int64_t kvLoraRank, int64_t ropeDim) {
  auto intAttr = [&](StringRef name) -> llvm::json::Value {
    if (auto a = m->getAttrOfType<IntegerAttr>(name))
      return a.getInt();
    return nullptr;
  };
  std::string modelType;
  if (auto a = m->getAttrOfType<StringAttr>("ds.model_type"))
    modelType = a.str();

  llvm::json::Array bindings;
  if (auto arr = m->getAttrOfType<ArrayAttr>("ds.bindings"))
    for (Attribute a : arr) {
      auto d = cast<DictionaryAttr>(a);
      llvm::json::Array shape, members;
      for (int64_t s : cast<DenseI64ArrayAttr>(d.get("shape")).asArrayRef())
        shape.push_back(s);
      for (Attribute mem : cast<ArrayAttr>(d.get("members")))
        members.push_back(cast<StringAttr>(mem).str());
      llvm::json::Object binding{
          {"index", cast<IntegerAttr>(d.get("index")).getInt()},
          {"shape", std::move(shape)},
          {"members", std::move(members)},
          {"dequantize", cast<BoolAttr>(d.get("dequantize")).getValue()},
          {"gemm_only", d.get("gemm_only")
                            ? cast<BoolAttr>(d.get("gemm_only")).getValue()
                            : false}};
      if (d.get("logits"))
        binding["logits"] = true;
      if (auto split = dyn_cast_or_null<DenseI64ArrayAttr>(d.get("split")))
        binding["split"] = llvm::json::Array{split[0], split[1]};
      bindings.push_back(std::move(binding));
    }
  llvm::json::Array weights;
  for (const RequiredWeight &w : in.weights) {
    llvm::json::Array shape;
    for (int64_t s : w.shape)
      shape.push_back(s);
    weights.push_back(llvm::json::Object{{"name", w.name},
                                         {"shape", std::move(shape)},
                                         {"dtype", dtypeName(w.elementType)}});
  }
  llvm::json::Object entries;
  for (const std::string &name : in.entryPoints) {
    llvm::json::Value maxTokens = nullptr;
    if (name == "decode")
      maxTokens = 1;
    llvm::json::Value activations = nullptr;
    auto plan = in.activationBytes.find(name);
    if (plan != in.activationBytes.end())
      activations = llvm::json::Object{{"per_token", plan->second.first},
                                       {"fixed", plan->second.second}};
    entries[name] = llvm::json::Object{{"symbol", "_mlir_ciface_" + name},
                                       {"max_tokens", std::move(maxTokens)},
                                       {"activation_bytes",
                                        std::move(activations)}};
  }
  // The greedy sampler convert-ds-to-loops adds (argmax of logits rows).
  if (m.lookupSymbol("_mlir_ciface_sample_greedy"))
    entries["sample_greedy"] =
        llvm::json::Object{{"symbol", "_mlir_ciface_sample_greedy"}};
  llvm::json::Object manifest{
      {"format_version", int64_t(kArtifactFormatVersion)},
      {"target", in.target},
      {"gpu_arch", in.gpuArch.empty() ? llvm::json::Value(nullptr)
                                      : llvm::json::Value(in.gpuArch)},
      {"dtype", in.dtype},
      {"host_cpu", in.hostCpu.empty() ? llvm::json::Value(nullptr)
                                      : llvm::json::Value(in.hostCpu)},
      {"model",
       llvm::json::Object{
           {"model_type", modelType},
           {"vocab_size", intAttr("ds.vocab_size")},
           {"num_layers", numLayers},
           {"kv_lora_rank", kvLoraRank},
           {"qk_rope_head_dim", ropeDim},
           {"cache_width", cacheWidth},
           {"cache_dtype", cacheDtype},
           {"cache_scale_group", in.cacheScaleGroup > 0
                                     ? llvm::json::Value(in.cacheScaleGroup)
                                     : llvm::json::Value(nullptr)},
           {"max_position_embeddings", intAttr("ds.max_position_embeddings")},
           {"bos_token_id", intAttr("ds.bos_token_id")},
           {"eos_token_id", intAttr("ds.eos_token_id")}}},
      {"entry_points", std::move(entries)},
      {"bindings", std::move(bindings)},
      {"weights", std::move(weights)}};
  // ds-partition-model: one artifact for every rank of a job this size.
  if (auto world = m->getAttrOfType<IntegerAttr>("ds.world_size"))
    manifest["parallel"] = llvm::json::Object{{"world_size", world.getInt()}};
  // The step's pages hold per-head K/V rather than the latent rows.
  if (in.stepCacheWidth > 0)
    manifest["step_cache"] = llvm::json::Object{{"layout", "per_head"},
                                                {"width", in.stepCacheWidth}};
  // Multi-token prediction: what @prefill_hidden and @draft exchange.
  if (in.mtpHiddenSize > 0)
    manifest["mtp"] =
        llvm::json::Object{{"hidden_size", in.mtpHiddenSize},
                           {"cache_layers", in.mtpCacheLayers},
                           {"draft_returns_hidden", in.mtpDraftReturnsHidden}};
  std::string out;
  llvm::raw_string_ostream os(out);
  os << llvm::json::Value(std::move(manifest));
  return out;
}

static bool optimizeAndEmit(llvm::Module &mod, llvm::TargetMachine &tm,
                            llvm::raw_pwrite_stream &os, std::string &error) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm =
      pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2);
  mpm.run(mod, mam);

  llvm::legacy::PassManager codegen;
  if (tm.addPassesToEmitFile(codegen, os, nullptr,
                             llvm::CodeGenFileType::ObjectFile)) {
    error = "the host target cannot emit object files";
    return false;
  }
  codegen.run(mod);
  return true;
}

std::string mlir::ds::hostCpuFor(const std::string &target) {
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  if (target == "cuda" && triple.getArch() == llvm::Triple::x86_64)
    return kPortableHostCpu;
  return llvm::sys::getHostCPUName().str();
}

bool mlir::ds::emitSharedObject(ModuleOp module, const std::string &hostCpu,
                                std::string &object, std::string &error,
                                std::string *hostIR) {
  MLIRContext *ctx = module.getContext();
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  ctx->appendDialectRegistry(registry);

  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::LLVMContext llctx;
  std::unique_ptr<llvm::Module> mod = translateModuleToLLVMIR(module, llctx);
  if (!mod) {
    error = "translation to LLVM IR failed";
    return false;
  }
  cacheKernelFunctions(*mod);
  if (hostIR) {
    llvm::raw_string_ostream os(*hostIR);
    mod->print(os, nullptr);
  }
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return false;
  // The host's own CPU: its features too (what -march=native does); a
  // portable level: the level's features only.
  llvm::SubtargetFeatures features;
  if (hostCpu == llvm::sys::getHostCPUName())
    for (const auto &f : llvm::sys::getHostCPUFeatures())
      features.AddFeature(f.first(), f.second);
  // The CUDA path's device binaries are loaded by global constructors;
  // glibc runs .init_array only (LLVM's default here is the legacy .ctors).
  llvm::TargetOptions targetOptions;
  targetOptions.UseInitArray = true;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, hostCpu, features.getString(), targetOptions,
      llvm::Reloc::PIC_, std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm) {
    error = "cannot create a target machine for " + triple.str();
    return false;
  }
  mod->setDataLayout(tm->createDataLayout());
  mod->setTargetTriple(triple);

  llvm::SmallString<128> objPath, soPath;
  int fd;
  if (auto ec = llvm::sys::fs::createTemporaryFile("ds-kernels", "o", fd,
                                                   objPath)) {
    error = "cannot create a temporary object file: " + ec.message();
    return false;
  }
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    if (!optimizeAndEmit(*mod, *tm, os, error))
      return false;
  }
  llvm::sys::fs::createTemporaryFile("ds-kernels", "so", soPath);
  auto cleanup = [&] {
    llvm::sys::fs::remove(objPath);
    llvm::sys::fs::remove(soPath);
  };
  // ld.lld from the same LLVM release; libm/libc symbols resolve at dlopen.
  llvm::ErrorOr<std::string> lld =
      llvm::sys::findProgramByName("ld.lld", {LLVM_TOOLS_DIR});
  if (!lld)
    lld = llvm::sys::findProgramByName("ld.lld");
  if (!lld) {
    cleanup();
    error = "ld.lld not found (install lld-22)";
    return false;
  }
  std::string msg;
  int rc = llvm::sys::ExecuteAndWait(
      *lld, {*lld, "-shared", "--no-undefined-version", "-o", soPath, objPath},
      std::nullopt, {}, 0, 0, &msg);
  if (rc != 0) {
    cleanup();
    error = "linking the kernels failed (ld.lld exit " + std::to_string(rc) +
            (msg.empty() ? "" : ": " + msg) + ")";
    return false;
  }
  auto buf = llvm::MemoryBuffer::getFile(soPath);
  if (!buf) {
    cleanup();
    error = "cannot read the linked kernels: " + buf.getError().message();
    return false;
  }
  object = (*buf)->getBuffer().str();
  cleanup();
  return true;
}

static uint64_t fnv1a(uint64_t h, llvm::StringRef bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

bool mlir::ds::writeArtifact(const std::string &path,
                             const std::string &manifest,
                             const std::string &object, std::string &error) {
  llvm::SmallString<256> tmp;
  int fd;
  llvm::SmallString<256> model(path);
  model += ".tmp-%%%%%%";
  if (auto ec = llvm::sys::fs::createUniqueFile(model, fd, tmp)) {
    error = "cannot write '" + path + "': " + ec.message();
    return false;
  }
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    auto u32 = [&](uint32_t v) { os.write(reinterpret_cast<char *>(&v), 4); };
    auto u64 = [&](uint64_t v) { os.write(reinterpret_cast<char *>(&v), 8); };
    os << "DSARTIFA";
    u32(kArtifactFormatVersion);
    u32(0);
    u64(manifest.size());
    u64(object.size());
    u64(fnv1a(fnv1a(14695981039346656037ULL, manifest), object));
    os << manifest << object;
    os.close();
    if (os.has_error()) {
      llvm::sys::fs::remove(tmp);
      error = "cannot write '" + path + "': " + os.error().message();
      return false;
    }
  }
  if (auto ec = llvm::sys::fs::rename(tmp, path)) {
    llvm::sys::fs::remove(tmp);
    error = "cannot write '" + path + "': " + ec.message();
    return false;
  }
  return true;
}
