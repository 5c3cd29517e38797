# thunderpass: the two entry points a fresh Debian 12 machine needs.
#   make demo   - set up everything, serve the model GPU, boot an arm64 guest
#                 under QEMU 11 and print what the guest sees
#   make check  - set up everything and run every test (unit, protocol,
#                 sanitizers, fuzzing smoke, guest tests on x86_64 and aarch64)
# Other targets: build, deps, unit, san, fuzz, fuzz-smoke, guest, bench, clean.

BUILD     ?= build
BUILD_SAN ?= build-san
MESON_SAN  = -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
# libFuzzer harnesses (tests/fuzz, docs/security.md): clang, ASan+UBSan.
BUILD_FUZZ ?= build-fuzz
FUZZERS    = fuzz_msg fuzz_frame fuzz_config fuzz_dma fuzz_pvdma
# Seconds per harness: make fuzz, and make fuzz-smoke (part of make check).
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20

.PHONY: all build deps demo check unit san fuzz fuzz-smoke guest bench clean

all: build

deps:
	tests/guest/testbed.sh --host-packages

$(BUILD)/build.ninja:
	meson setup $(BUILD)

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) $(MESON_SAN)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: deps build
	tests/guest/demo.sh

unit: build
	meson test -C $(BUILD) --print-errorlogs

# The same unit and protocol tests with ASan+UBSan, the server included.
san: $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(BUILD_SAN) --print-errorlogs

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true

# Replays each harness's corpus (tests/fuzz/corpus/NAME), then fuzzes it for
# FUZZ_SMOKE_SECONDS from a copy: a crash or broken invariant fails.
fuzz-smoke: $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)
	FUZZ_SMOKE_SECONDS=$(FUZZ_SMOKE_SECONDS) meson test -C $(BUILD_FUZZ) --suite fuzz \
		--print-errorlogs --verbose

# Fuzzes each harness for FUZZ_SECONDS, then minimizes its corpus into
# tests/fuzz/corpus (-merge=1); prints the executions per harness and in total.
fuzz: $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)
	@total=0; for f in $(FUZZERS); do \
		out=$$(FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh fuzz $$f $(BUILD_FUZZ)/tests/fuzz/$$f) \
			|| { echo "$$out"; exit 1; }; \
		echo "$$out"; \
		n=$$(echo "$$out" | sed -n 's/^fuzz [a-z_]*: \([0-9]*\) executions.*/\1/p'); \
		total=$$((total + $${n:-0})); \
	done; echo "fuzz: $$total executions in total, no crash"

guest: build
	tests/guest/check.sh

# The iommufd guest kernel (tests/guest/kernel.sh, about 9 CPU-minutes the first
# time) builds in the background at the lowest priority while the other tests run,
# on the cycles they leave (fuzz-smoke uses one core); the guest tests that need it
# wait for it. Its own session, so that an interrupted check stops it too.
check: deps
	@mkdir -p $(BUILD); \
	setsid nice -n 19 tests/guest/kernel.sh > $(BUILD)/kernel-build.log 2>&1 & k=$$!; \
	trap 'kill -TERM -- -'$$k' 2>/dev/null; wait' EXIT INT TERM; \
	$(MAKE) unit && $(MAKE) san && $(MAKE) fuzz-smoke && $(MAKE) guest

bench: deps build
	bench/run.sh

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
