# yongjin — build, run and test. See README.md.
#
#   make            bin/yongjind and bin/yj (release: -O2 -g, assertions on), and
#                   the Python modules in build/py/ (README's example, the e2e tests)
#   make run        deps, build (as make), start yongjind on 127.0.0.1:50051, data in ./var/
#   make test       deps, build (release and ASan+UBSan, every core), unit tests of both builds,
#                   the fuzz replay, then the e2e suite against both builds side by side
#   make asan       the ASan+UBSan build in build/asan/bin/
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (docs/reliability.md)
#   make bench      yongjin against the PostgreSQL peer (docs/performance.md)
#   make bench-scaling  paid and read as the store grows to 10M entries; restarts, Verify and memory there (~35 min)
#   make format     clang-format every C file
#
# Every source file under src/<module>/ is compiled into the library that the
# programs and the unit tests link; src/main.c is yongjind, tools/*.c the tools.
# protobuf-c code is generated at build time into build/gen/, never committed.

PY       ?= /usr/bin/python3
CC       ?= cc
BUILD    ?= build/release
BIN      ?= bin
LISTEN   ?= 127.0.0.1:50051
DATA     ?= ./var

PKGS     := libevent libevent_openssl libevent_pthreads libnghttp2 openssl libprotobuf-c jansson libdeflate libxxhash
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter
CPPFLAGS += -Iinclude -Ibuild/gen -Isrc -D_GNU_SOURCE
DEPFLAGS := -MMD -MP
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARN) -fno-strict-aliasing -pthread
LDLIBS   += -llmdb -lpthread
# yongjind's allocator: jemalloc, as Redis links it (its per-thread caches
# take the event loop's per-call allocations; docs/performance.md,
# thirty-third session). The sanitizer build keeps its own (ASan's).
MALLOC_LIB ?= -ljemalloc
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

PROTOS   := $(wildcard proto/yongjin/v1/*.proto) proto/yongjin/state/state.proto proto/grpc/health/v1/health.proto
GEN_C    := $(patsubst proto/%.proto,build/gen/%.pb-c.c,$(PROTOS))
GEN_H    := $(GEN_C:.c=.h)
GEN_PY   := $(patsubst proto/%.proto,build/py/%_pb2.py,$(PROTOS))

LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(patsubst build/gen/%.c,$(BUILD)/gen/%.o,$(GEN_C))
TOOLS    := $(patsubst tools/%.c,%,$(wildcard tools/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps run test unit e2e asan asan-unit asan-e2e fuzz fuzz-replay-bins bench bench-scaling bench-state format clean py check-nofloat unit-bins
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BIN)/yongjind $(addprefix $(BIN)/,$(TOOLS)) py

deps:
	@tools/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(DATA)
	$(BIN)/yongjind --listen $(LISTEN) --data $(DATA)

# make test: the whole proof. tools/test.sh prints the summary and exits non-zero on failure.
# The builds use every core (JOBS); tools/test.sh runs the release and the
# ASan unit tests side by side, then the e2e suites side by side (most of
# their time is spent waiting).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all unit-bins py check-nofloat build/fuzz-seeds
	@$(MAKE) --no-print-directory -j$(JOBS) asan
	@tools/test.sh

unit: all $(UNIT_BIN)
	@tools/test.sh unit

e2e: all py
	@tools/test.sh e2e

py: $(GEN_PY)

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" MALLOC_LIB= all unit-bins fuzz-replay-bins

unit-bins: $(UNIT_BIN)

# No float or double on a money path (STYLE.md "Money"): the rules, the
# ledger and the store must compile without the floating-point registers,
# so any float or double there is a compile error, not a grep miss.
MONEY_SRC := $(wildcard src/rules/*.c src/ledger/*.c src/store/*.c src/state/*.c)
check-nofloat: $(GEN_H)
	@for f in $(MONEY_SRC); do \
	  $(CC) $(CPPFLAGS) -std=gnu11 -mgeneral-regs-only -fsyntax-only $(PKG_CFLAGS) $$f \
	    || { echo "check-nofloat: floating point in $$f (a money path)" >&2; exit 1; }; \
	done

# V=1 shows the commands.
Q := $(if $(V),,@)

build/gen/%.pb-c.c build/gen/%.pb-c.h: proto/%.proto
	@mkdir -p build/gen
	@echo "  PROTOC-C $<"
	$(Q)protoc-c -Iproto --c_out=build/gen $<

build/py/%_pb2.py: proto/%.proto
	@mkdir -p build/py
	$(Q)protoc -Iproto --python_out=build/py $<

$(BUILD)/gen/%.o: build/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) -Wno-missing-prototypes $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  CC $(BUILD)/$<"
	$(Q)$(CC) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/libyongjin.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN)/yongjind: $(BUILD)/src/main.o $(BUILD)/libyongjin.a
	@mkdir -p $(BIN)
	@echo "  LD $@"
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(LDLIBS) $(MALLOC_LIB)

$(BIN)/%: $(BUILD)/tools/%.o $(BUILD)/libyongjin.a
	@mkdir -p $(BIN)
	@echo "  LD $@"
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libyongjin.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) -lcmocka $(LDLIBS)

# ---- fuzzing (docs/reliability.md) ----
# make fuzz: each libFuzzer target runs FUZZ_SECONDS on seeds made from the
# e2e requests; a crash stops it and its input is what to keep in
# tests/fuzz/regress/<target>/. make test replays seeds and kept crashes.
FUZZ_TARGETS := fuzz_h2 fuzz_event
FUZZ_SECONDS ?= 60

fuzz-replay-bins: $(patsubst %,$(BUILD)/fuzz/replay_%,$(FUZZ_TARGETS))

$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/libyongjin.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(LDLIBS)

build/fuzz-seeds: $(GEN_PY) tests/fuzz/make_seeds.py tests/e2e/h2raw.py
	@rm -rf $@
	$(Q)$(PY) tests/fuzz/make_seeds.py $@ >/dev/null

fuzz: deps
	@$(MAKE) --no-print-directory build/fuzz-seeds
	@$(MAKE) --no-print-directory BUILD=build/fuzz BIN=build/fuzz/bin CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer" \
	  build/fuzz/libyongjin.a $(patsubst %,build/fuzz/tests/fuzz/%.o,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  clang -fsanitize=address,undefined,fuzzer -o build/fuzz/$$t build/fuzz/tests/fuzz/$$t.o \
	    build/fuzz/libyongjin.a $(PKG_LIBS) $(LDLIBS) || exit 1; \
	  mkdir -p build/fuzz/corpus/$$t; cp build/fuzz-seeds/$$t/* build/fuzz/corpus/$$t/; \
	  echo "== $$t for $(FUZZ_SECONDS) s"; \
	  (cd build/fuzz && ./$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	     corpus/$$t 2>&1 | grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|#[0-9]+ *DONE)|ERROR|SUMMARY") \
	    || true; \
	  if ls build/fuzz | grep -qE '^(crash|leak|timeout|oom)-'; then \
	    echo "$$t: crash found (kept in build/fuzz/: copy it to tests/fuzz/regress/$$t/ once fixed)"; exit 1; fi; \
	  echo "$$t: no crash"; \
	done

bench:
	@tools/deps.sh --bench
	@$(MAKE) --no-print-directory all
	@tools/bench.sh

# What the typed state's apply costs an order, alone, its snapshot's size
# and save and load times, its checkpoint file written by a forked child
# and read back, and a replica's and a published copy's cost as the
# readers' view (issue 16; docs/performance.md "thirty-fifth" and
# "thirty-sixth session"; about 75 seconds; a scratch directory under the current one, removed).
bench-state: deps
	@$(MAKE) --no-print-directory all
	@$(BIN)/yj-state-bench --members 100000 --orders 1000000
	@$(BIN)/yj-state-bench --members 1000000 --orders 1000000
	@$(BIN)/yj-view-bench --rate 50000 --group 64 --read-rate 100000
	@$(BIN)/yj-view-bench --copy --rate 50000 --group 64 --read-rate 100000

# Write and read cost as the store grows to 10M entries (about 15 minutes).
bench-scaling: deps
	@$(MAKE) --no-print-directory all
	@tools/bench_scaling.sh

format:
	clang-format -i $(LIB_SRC) src/main.c $(wildcard tools/*.c) $(UNIT_SRC) $(wildcard include/yongjin/*.h src/*/*.h)

clean:
	rm -rf build bin

# every build's dependency files, an out-of-tree BUILD's too (without them a
# header change rebuilt nothing there)
-include $(sort $(shell find build $(BUILD) -name '*.d' 2>/dev/null))
