# Thin wrapper over CMake so that `make`, `make test`, `make bench` and
# `make demo` are the whole interface.
BUILD    ?= build
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE    ?= cmake
CMFLAGS  ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all configure test bench demo clean format deps

all: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS)

configure: $(BUILD)/CMakeCache.txt

$(BUILD)/CMakeCache.txt:
	$(CMAKE) -S . -B $(BUILD) $(CMFLAGS)

deps:
	./scripts/install-deps.sh

# test and demo first make sure the Debian packages are there (a no-op when
# they are); plain `make` only builds.
test: deps
	$(MAKE) all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: deps
	$(MAKE) all
	./bench/run.sh $(BUILD)

demo: deps
	$(MAKE) all
	./demo/run.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
