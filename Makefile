# ds: the two commands a user needs are `make demo` and `make test`.
# Both install what is missing (Debian packages), configure and build first.

PYTHON     ?= /usr/bin/python3
BUILD      ?= build
LLVM_DIR   ?= /usr/lib/llvm-22
CMAKE_ARGS ?=

APT_PACKAGES := cmake ninja-build clang-22 lld-22 llvm-22-dev llvm-22-tools \
  libmlir-22-dev mlir-22-tools libgtest-dev pybind11-dev python3-dev \
  python3-numpy python3-pytest libopenblas-dev

.PHONY: all deps configure build test demo clean

all: build

deps:
	@scripts/install-deps.sh $(APT_PACKAGES)

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

clean:
	rm -rf $(BUILD)
