# cruddur - build, test, demo.
# `make` builds build/libcruddur.so; `make test` and `make demo` first install
# what a fresh Debian 12 needs (scripts/install-deps.sh, idempotent).

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3

CFLAGS_BASE := -std=gnu11 -O2 -g -fPIC -fvisibility=hidden -pthread \
	-Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-D_GNU_SOURCE -DCURL_DISABLE_TYPECHECK -Ipreload -Iexport -Ihooks
CFLAGS  ?=
# SAN_FLAGS: sanitizer flags for every compile and link of the library, the
# unit tests and the test servers (set by `make test-asan`; empty otherwise).
SAN_FLAGS ?=
ALL_CFLAGS := $(CFLAGS_BASE) $(SAN_FLAGS) $(CFLAGS)
LDLIBS_LIB := -ldl -pthread

# Core: everything but the interposers. Unit tests link these objects
# directly (hooks would interpose on the test binary itself).
CORE_SRC := $(sort $(wildcard preload/*.c) $(wildcard export/*.c))
HOOK_SRC := $(sort $(wildcard hooks/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
HOOK_OBJ := $(HOOK_SRC:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libcruddur.so

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
SERVER_SRC := $(sort $(wildcard tests/servers/*.c))
SERVER_BIN := $(SERVER_SRC:tests/servers/%.c=$(BUILD)/servers/%)
PROTO_PY := $(BUILD)/proto_py/opentelemetry/proto/collector/trace/v1/trace_service_pb2.py

.PHONY: all deps test test-unit test-integration demo install uninstall lint format clean

all: $(LIB)

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c $(wildcard preload/*.h export/*.h hooks/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(CORE_OBJ) $(HOOK_OBJ) preload/cruddur.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ $(CORE_OBJ) $(HOOK_OBJ) -Wl,--version-script=preload/cruddur.map \
		-Wl,-z,defs -Wl,-z,now $(SAN_FLAGS) $(LDLIBS_LIB)

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -fvisibility=default $< $(CORE_OBJ) -o $@ -lcriterion -lcjson $(LDLIBS_LIB)

$(BUILD)/servers/%: tests/servers/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  SERVER  $@")
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread $(SAN_FLAGS) $< -o $@ -lcurl

$(PROTO_PY): $(shell find tests/proto -name '*.proto' 2>/dev/null)
	@mkdir -p $(BUILD)/proto_py
	protoc -I tests/proto --python_out=$(BUILD)/proto_py $(shell cd tests/proto && find . -name '*.proto' | sed 's|^\./||')

deps:
	@scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

# CI (.ci/run) runs this: the format check, unit, integration, a short fuzzing run of every
# fuzz target, and the unit suites under ASan/UBSan (the whole suite under
# the sanitizers is `make test-asan`, about 8 minutes).
test: deps
	$(MAKE) lint
	$(MAKE) test-unit
	$(MAKE) test-integration
	$(MAKE) fuzz-smoke
	$(MAKE) BUILD=$(ASAN_BUILD) SAN_FLAGS="$(ASAN_SAN_FLAGS)" test-asan-unit

test-unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do $$t --jobs 2 || rc=1; done; exit $$rc

test-integration: $(LIB) $(SERVER_BIN) $(PROTO_PY)
	$(PYTHON) tests/integration/run.py

demo: deps $(LIB)
	$(PYTHON) scripts/demo.py

# make install PREFIX=/usr/local [DESTDIR=/stage]: PREFIX/lib/libcruddur.so,
# PREFIX/bin/cruddur-run (and cruddur-view), README.md and examples/ in
# PREFIX/share/doc/cruddur. scripts/install.sh writes a manifest there, so
# `make uninstall` (same PREFIX/DESTDIR) removes exactly what was installed.
install: $(LIB)
	scripts/install.sh install "$(DESTDIR)" "$(PREFIX)" "$(LIB)"

uninstall:
	scripts/install.sh uninstall "$(DESTDIR)" "$(PREFIX)"

lint:
	clang-format --dry-run --Werror $(CORE_SRC) $(HOOK_SRC) $(wildcard preload/*.h export/*.h hooks/*.h)

format:
	clang-format -i $(CORE_SRC) $(HOOK_SRC) $(wildcard preload/*.h export/*.h hooks/*.h)

clean:
	rm -rf $(BUILD)

# Benchmark (scripts/bench.py; about 4 minutes on 2 cores).
BENCH_BIN := $(BUILD)/bench/hookpath $(BUILD)/bench/otlp_count $(BUILD)/bench/malloc_count.so
.PHONY: bench
bench: $(LIB) $(BENCH_BIN)
	CRUDDUR_BENCH_BUILD=$(BUILD) $(PYTHON) scripts/bench.py

$(BUILD)/bench/hookpath: tests/bench/hookpath.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fvisibility=default $< $(CORE_OBJ) -o $@ $(LDLIBS_LIB)

$(BUILD)/bench/otlp_count: tests/bench/otlp_count.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@

$(BUILD)/bench/malloc_count.so: tests/bench/malloc_count.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -fPIC -shared $< -o $@

# Rollbar crash tests (tests/crash/): programs that crash on purpose, a C++
# program that throws, and a preload library with an earlier SIGSEGV handler.
CXX ?= c++
CRASH_BIN := $(BUILD)/crash/crashme $(BUILD)/crash/crashsrv $(BUILD)/crash/excpp \
	$(BUILD)/crash/prehandler.so
.PHONY: crash-progs
crash-progs: $(CRASH_BIN)
test-integration: $(CRASH_BIN)

$(BUILD)/crash/%: tests/crash/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CRASH   $@")
	$(Q)$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread $< -o $@

$(BUILD)/crash/excpp: tests/crash/excpp.cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CRASH   $@")
	$(Q)$(CXX) -std=c++17 -O1 -g -Wall -Wextra -Werror $< -o $@

$(BUILD)/crash/prehandler.so: tests/crash/prehandler.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CRASH   $@")
	$(Q)$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -fPIC -shared $< -o $@

# Fuzzing (tests/fuzz/, libFuzzer; README "Fuzzing"). The core is compiled
# again with clang, coverage instrumentation and ASan+UBSan into
# $(BUILD)/fuzz/ and archived, so each target links only the objects it
# needs. `make fuzz` runs every target FUZZ_TIME seconds, `make fuzz-smoke`
# FUZZ_SMOKE_TIME (for CI); new inputs go to $(BUILD)/fuzz/corpus/, crashes
# to $(BUILD)/fuzz/crashes/ and fail the run.
FUZZ_CC ?= clang-14
FUZZ_TIME ?= 60
FUZZ_SMOKE_TIME ?= 10
FUZZ_TARGETS := http1 tracectx inject json
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := $(CFLAGS_BASE) -O1 $(FUZZ_SAN)
FUZZ_OBJ := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
.PHONY: fuzz fuzz-smoke fuzz-build
.SECONDARY: $(FUZZ_OBJ)

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard preload/*.h export/*.h hooks/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libcore.a: $(FUZZ_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libcore.a
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_DIR)/libcore.a -o $@ -lm $(LDLIBS_LIB)

fuzz-build: $(FUZZ_BIN)

fuzz: deps $(FUZZ_BIN)
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_TIME) $(FUZZ_TARGETS)

fuzz-smoke: deps $(FUZZ_BIN)
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SMOKE_TIME) $(FUZZ_TARGETS)

# make test-asan (issue #8): the unit and integration suites against the
# library, unit tests and test servers built with AddressSanitizer and
# UndefinedBehaviorSanitizer in build-asan/ (the crash programs stay plain:
# they crash on purpose). Unit tests run with leak detection on; the
# integration runner preloads the ASan runtime before the library
# (tests/integration/harness.py, CRUDDUR_TEST_ASAN). Any sanitizer report
# fails the run: unit reports go to build-asan/asan-logs/, integration ones
# to build-asan/integration-logs/<test>.asan.<pid>.
ASAN_BUILD := build-asan
ASAN_SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
.PHONY: test-asan test-asan-unit test-asan-integration
test-asan: deps
	$(MAKE) BUILD=$(ASAN_BUILD) SAN_FLAGS="$(ASAN_SAN_FLAGS)" test-asan-unit
	$(MAKE) BUILD=$(ASAN_BUILD) SAN_FLAGS="$(ASAN_SAN_FLAGS)" test-asan-integration

# Both expect BUILD and SAN_FLAGS as test-asan sets them.
test-asan-unit: $(UNIT_BIN)
	@rm -rf $(BUILD)/asan-logs && mkdir -p $(BUILD)/asan-logs
	@rc=0; for t in $(UNIT_BIN); do \
		log=$(abspath $(BUILD))/asan-logs/$${t##*/}; \
		ASAN_OPTIONS=detect_leaks=1:log_path=$$log \
		LSAN_OPTIONS=suppressions=$(abspath tests/unit/lsan.supp):print_suppressions=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$$log \
		$$t --jobs 2 || rc=1; done; \
	for f in $(BUILD)/asan-logs/*; do [ -e "$$f" ] || continue; rc=1; \
		echo "== sanitizer report $$f"; head -n 40 "$$f"; done; \
	exit $$rc

test-asan-integration: $(LIB) $(SERVER_BIN) $(PROTO_PY) $(CRASH_BIN)
	CRUDDUR_TEST_ASAN=1 CRUDDUR_TEST_BUILD=$(abspath $(BUILD)) CRUDDUR_TEST_LIB=$(abspath $(LIB)) \
		$(PYTHON) tests/integration/run.py
