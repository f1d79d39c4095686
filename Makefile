# Thin wrapper over CMake. `make demo` and `make test` work on a fresh Debian 12 machine:
# both install what is missing first (scripts/install-deps).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 600
CMAKE_FLAGS ?=

.PHONY: all deps configure build test package-check test-sanitize demo bench fuzz format format-check clean

all: build

deps:
	@scripts/install-deps

# Release at -O2 without debug info: a third less compile time than RelWithDebInfo, which
# keeps a from-scratch `make test` on a 2-core CI machine well inside its budget.
configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release '-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG' \
	  '-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG' $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Every test: unit, integration (real PostgreSQL, real TLS), e2e, conformance, interop.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The Debian package from $(BUILD), building only `larder` (nothing after `make test`):
# lintian, the files unpacked into a scratch root, the example configurations through
# `larder serve --check-config`, the systemd units through systemd-analyze. The .deb is
# left in $(BUILD)/packages.
package-check: configure
	@scripts/package-check $(BUILD)

# The unit tests once more under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLARDER_SANITIZE=ON -DLARDER_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target unit_tests
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L unit

# The one-command demo: embedded PostgreSQL, certificates, tokens, both servers, scenarios.
demo: build
	@$(BUILD)/larder demo

bench: build
	@scripts/bench $(BUILD)

# libFuzzer targets (clang), each run for FUZZ_SECONDS.
fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLARDER_FUZZ=ON -DLARDER_TESTS=OFF -DLARDER_BENCH=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/run-fuzzers $(FUZZ_BUILD) $(FUZZ_SECONDS)

format:
	@scripts/format

# Fails on any C++ file that clang-format would change (CI runs it first).
format-check:
	@scripts/format --check

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
