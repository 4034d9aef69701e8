# ds: the two commands a user needs are `make demo` and `make test`.
# Both install what is missing (Debian packages), configure and build first.

PYTHON     ?= /usr/bin/python3
BUILD      ?= build
LLVM_DIR   ?= /usr/lib/llvm-22
CMAKE_ARGS ?=

APT_PACKAGES := cmake ninja-build clang-22 lld-22 libclang-rt-22-dev llvm-22-dev llvm-22-tools \
  libmlir-22-dev mlir-22-tools libgtest-dev pybind11-dev python3-dev \
  python3-numpy python3-pytest python3-matplotlib libopenblas-dev \
  libpcre2-dev libcpp-httplib-dev nlohmann-json3-dev mpich libmpich-dev curl python3-jinja2 \
  libdnnl-dev

.PHONY: all deps configure build test demo bench fuzz test-asan test-tsan clean

all: build

deps:
	@scripts/install-deps.sh $(APT_PACKAGES)
	@scripts/install-npm.sh

$(BUILD)/build.ninja:
	cmake -G Ninja -S . -B $(BUILD) \
	  -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_C_COMPILER=$(LLVM_DIR)/bin/clang -DCMAKE_CXX_COMPILER=$(LLVM_DIR)/bin/clang++ \
	  -DMLIR_DIR=$(LLVM_DIR)/lib/cmake/mlir \
	  -DPython3_EXECUTABLE=$(PYTHON) $(CMAKE_ARGS)

configure: deps $(BUILD)/build.ninja

build: configure
	ninja -C $(BUILD)

test: build
	$(PYTHON) scripts/run-tests.py --build $(BUILD)

demo: build
	$(PYTHON) scripts/demo.py --build $(BUILD)

bench: build
	$(PYTHON) bench/report.py --build $(BUILD)

# Each fuzz target for FUZZ_SECONDS on a scratch copy of its corpus; what
# it finds (crash-*, oom-*, timeout-*, leak-* inputs) is left in
# $(BUILD)/fuzz-work/<target> and fails the target.
FUZZ_SECONDS ?= 60
fuzz: build
	@for t in safetensors artifact config ir serve-request tokenizer-load tokenizer-encode chat-template; do \
	  rm -rf $(BUILD)/fuzz-work/$$t && mkdir -p $(BUILD)/fuzz-work/$$t && \
	  cp -r fuzz/corpus/$$t $(BUILD)/fuzz-work/$$t/corpus && \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s" && \
	  (cd $(BUILD)/fuzz-work/$$t && ../../fuzz/ds-fuzz-$$t -max_total_time=$(FUZZ_SECONDS) \
	     -max_len=8192 -timeout=10 corpus > fuzz.log 2>&1); \
	  grep -E "^Done|ERROR|SUMMARY" $(BUILD)/fuzz-work/$$t/fuzz.log; \
	  if ls $(BUILD)/fuzz-work/$$t | grep -qE '^(crash|oom|timeout|leak)-'; then \
	    echo "fuzz: $$t found a crash, an out-of-memory, a timeout or a leak, see $(BUILD)/fuzz-work/$$t/fuzz.log"; exit 1; fi; \
	done

# The whole lit + gtest suite with ASan + UBSan (+ LSan) in its own build tree.
ASAN_BUILD ?= build-asan
test-asan: deps
	cmake -G Ninja -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_COMPILER=$(LLVM_DIR)/bin/clang -DCMAKE_CXX_COMPILER=$(LLVM_DIR)/bin/clang++ \
	  -DMLIR_DIR=$(LLVM_DIR)/lib/cmake/mlir -DPython3_EXECUTABLE=$(PYTHON) \
	  -DDS_BUILD_FUZZERS=OFF -DDS_SANITIZE=ON
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:allow_user_poisoning=0 LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTHON) scripts/run-tests.py --build $(ASAN_BUILD) --no-pytest

# The runtime (engine included) and its gtest suites with ThreadSanitizer,
# in its own build tree without the compiler (the runtime needs none of it).
TSAN_BUILD ?= build-tsan
test-tsan: deps
	cmake -G Ninja -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_COMPILER=$(LLVM_DIR)/bin/clang -DCMAKE_CXX_COMPILER=$(LLVM_DIR)/bin/clang++ \
	  -DDS_BUILD_COMPILER=OFF -DDS_SANITIZE_THREAD=ON $(CMAKE_ARGS)
	ninja -C $(TSAN_BUILD)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/scripts/tsan.supp \
	  $(LLVM_DIR)/bin/lit -sv $(TSAN_BUILD)/unittests

clean:
	rm -rf $(BUILD)
