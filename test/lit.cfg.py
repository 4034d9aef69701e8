# -*- Python -*-
import os
import shutil
import subprocess

import lit.formats
from lit.llvm import llvm_config

config.name = "DS"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "configs", "lit.cfg.py", "CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.ds_obj_root, "test")

# Captured variables must not leak across CHECK-LABEL sections.
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"

cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
config.environment["CUDA_HOME"] = cuda_home
config.substitutions.append(("%cuda_home", cuda_home))

python = getattr(config, "python_executable", "") or "/usr/bin/python3"
config.substitutions.append(("%python", python))
config.substitutions.append(("%ds_src", config.ds_src_root))
config.substitutions.append(("%ds_bin", config.ds_tools_dir))
config.substitutions.append(("%ds_fuzz", os.path.join(config.ds_obj_root, "fuzz")))
if os.path.isdir(os.path.join(config.ds_obj_root, "fuzz")):
    config.available_features.add("fuzzers")
# Before %fake_cuda, its prefix.
config.substitutions.append(("%fake_cuda_nographs", os.path.join(config.ds_obj_root, "test", "fake-cuda-nographs", "libcuda.so.1")))
config.substitutions.append(("%fake_cuda", os.path.join(config.ds_obj_root, "test", "fake-cuda", "libcuda.so.1")))
config.substitutions.append(("%fake_nccl", os.path.join(config.ds_obj_root, "test", "fake-nccl", "libnccl.so.2")))
config.substitutions.append(("%fake_cublas", os.path.join(config.ds_obj_root, "test", "fake-cuda", "libcublas.so.13")))
config.substitutions.append(("%tools", os.path.join(config.ds_src_root, "test", "tools")))
# mlir-runner's print support, for programs that run the codec directly.
config.substitutions.append(("%mlir_c_runner_utils", os.path.join(
    os.path.dirname(config.llvm_tools_dir), "lib", "libmlir_c_runner_utils.so")))
config.substitutions.append(("%configs", os.path.join(config.ds_src_root, "test", "Import", "configs")))

llvm_config.with_system_environment(["HOME", "TMPDIR"])
llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.ds_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

tool_dirs = [config.ds_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["ds-opt", "ds-compile", "ds-run", "ds-serve"], tool_dirs)

# GPU integration tests need a device that answers, not just a toolkit.
def _has_cuda_device():
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, timeout=20)
        return out.returncode == 0 and b"GPU" in out.stdout
    except Exception:
        return False

# The CPU kernels' instruction sets (DSRT_CPU_ISA may force only those the
# CPU has): tests of each path against the others need them all.
def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


if {"avx2", "fma", "f16c"} <= _cpu_flags():
    config.available_features.add("avx2")
if {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"} <= _cpu_flags():
    config.available_features.add("avx512bf16")
    if "avx512vbmi" in _cpu_flags():
        config.available_features.add("avx512vbmi")
        if "gfni" in _cpu_flags():
            config.available_features.add("gfni")
        if {"amx_tile", "amx_bf16"} <= _cpu_flags():
            config.available_features.add("amx")

# make test-asan's tree: the runtime is built with ASan/UBSan, which the
# uninstrumented Python interpreter cannot host (a ctypes or module load of
# libdsrt fails on the ASan runtime's symbols), so tests whose runtime runs
# inside Python are unsupported there; make test runs them.
if getattr(config, "ds_sanitize", "").upper() in ("ON", "1", "TRUE", "YES"):
    config.available_features.add("sanitized")

if _has_cuda_device():
    config.available_features.add("cuda")
if os.path.exists(os.path.join(cuda_home, "bin", "ptxas")):
    config.available_features.add("ptxas")

# Multi-rank runtime tests (test/Runtime/Comm) need an MPI launcher; the
# install step puts MPICH's there. Every launch is bounded: a hung job fails
# the test instead of the suite.
# Debian's MPICH runs over UCX, whose memory hooks crash processes built with
# AddressSanitizer (make test-asan); they only serve RDMA registration
# caches, which these tests do not use.
config.environment["UCX_MEM_EVENTS"] = "no"
mpiexec = shutil.which("mpiexec")
if mpiexec:
    config.available_features.add("mpiexec")
    config.substitutions.append(("%mpiexec", f"timeout 120 {mpiexec}"))
config.substitutions.append(
    ("%comm_check", os.path.join(config.ds_tools_dir, "ds-comm-check")))
if os.path.exists(os.path.join(cuda_home, "lib64", "libnccl.so.2")):
    config.available_features.add("nccl-library")
