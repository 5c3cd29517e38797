# thunderpass: the two entry points a fresh Debian 12 machine needs.
#   make demo   - set up everything, serve the model GPU, boot an arm64 guest
#                 under QEMU 11 and print what the guest sees
#   make check  - set up everything and run every test (unit, protocol,
#                 sanitizers, guest tests on x86_64 and aarch64)
# Other targets: build, deps, unit, san, guest, bench, clean.

BUILD     ?= build
BUILD_SAN ?= build-san
MESON_SAN  = -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

.PHONY: all build deps demo check unit san guest bench clean

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

guest: build
	tests/guest/check.sh

check: deps
	$(MAKE) unit
	$(MAKE) san
	$(MAKE) guest

bench: deps build
	bench/run.sh

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
