//===- KernelFunctionCache.cpp - one function lookup per launch site ------===//
//
// MLIR's translation of gpu.launch_func asks the runtime for the kernel's
// CUfunction before every launch (mgpuModuleGetFunction(module, name)):
// a call, a map lookup and, in our runtime, a thread-local cache probe per
// launch, a few hundred per decode step. The function of a loaded module
// never changes, so each launch site gets a global that holds it, filled
// by the first launch; later launches load it. The store and load are
// atomic (release/acquire): two threads racing on the first launch both
// look the function up and store the same value. The globals live in the
// artifact's shared object, as its modules do: unloading the artifact
// (which unloads the modules) drops them too. A failed lookup (null) is
// not kept, so the next launch asks again and reports again.
//
//===----------------------------------------------------------------------===//
#include "ds/Target/Artifact.h"

#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/Module.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"

using namespace llvm;

unsigned mlir::ds::cacheKernelFunctions(Module &module) {
  Function *lookup = module.getFunction("mgpuModuleGetFunction");
  if (!lookup)
    return 0;
  SmallVector<CallInst *> sites;
  for (User *u : lookup->users())
    if (auto *call = dyn_cast<CallInst>(u);
        call && call->getCalledFunction() == lookup)
      sites.push_back(call);
  llvm::PointerType *ptr = PointerType::getUnqual(module.getContext());
  unsigned index = 0;
  for (CallInst *call : sites) {
    // Named after the kernel's name string when it is a global, as MLIR's
    // translation makes it (`<module>_<kernel>_name`).
    auto *name = dyn_cast<GlobalVariable>(call->getArgOperand(1));
    std::string cacheName =
        (name ? name->getName().str() : std::string("kernel")) + ".function." +
        std::to_string(index++);
    auto *cache = new GlobalVariable(module, ptr, /*isConstant=*/false,
                                     GlobalValue::InternalLinkage,
                                     ConstantPointerNull::get(ptr),
                                     cacheName);
    cache->setAlignment(Align(8));

    IRBuilder<> b(call);
    LoadInst *cached = b.CreateAlignedLoad(ptr, cache, Align(8), "cached");
    cached->setAtomic(AtomicOrdering::Acquire);
    llvm::Value *miss = b.CreateIsNull(cached, "miss");
    BasicBlock *before = call->getParent();
    Instruction *then = SplitBlockAndInsertIfThen(miss, call, false);
    // The lookup moves into the miss block; its result is kept there.
    call->moveBefore(then->getIterator());
    b.SetInsertPoint(then);
    StoreInst *fill = b.CreateAlignedStore(call, cache, Align(8));
    fill->setAtomic(AtomicOrdering::Release);
    BasicBlock *missBlock = then->getParent();
    BasicBlock *after = then->getSuccessor(0);
    b.SetInsertPoint(after, after->getFirstInsertionPt());
    PHINode *fn = b.CreatePHI(ptr, 2, "function");
    call->replaceUsesWithIf(fn,
                           [&](llvm::Use &u) { return u.getUser() != fill; });
    fn->addIncoming(cached, before);
    fn->addIncoming(call, missBlock);
  }
  return unsigned(sites.size());
}
