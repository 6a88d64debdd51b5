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
ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)
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
		-Wl,-z,defs -Wl,-z,now $(LDLIBS_LIB)

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -fvisibility=default $< $(CORE_OBJ) -o $@ -lcriterion -lcjson $(LDLIBS_LIB)

$(BUILD)/servers/%: tests/servers/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  SERVER  $@")
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread $< -o $@ -lcurl

$(PROTO_PY): $(shell find tests/proto -name '*.proto' 2>/dev/null)
	@mkdir -p $(BUILD)/proto_py
	protoc -I tests/proto --python_out=$(BUILD)/proto_py $(shell cd tests/proto && find . -name '*.proto' | sed 's|^\./||')

deps:
	@scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

test: deps
	$(MAKE) test-unit
	$(MAKE) test-integration

test-unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do $$t --jobs 2 || rc=1; done; exit $$rc

test-integration: $(LIB) $(SERVER_BIN) $(PROTO_PY)
	$(PYTHON) tests/integration/run.py

demo: deps $(LIB)
	$(PYTHON) scripts/demo.py

install: $(LIB)
	install -d $(DESTDIR)$(PREFIX)/lib
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libcruddur.so

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libcruddur.so

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
	$(PYTHON) scripts/bench.py

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
