# SPDX-License-Identifier: Apache-2.0
#
# berth: plain Makefile.  make [V=1] [SAN=1]; make check; make demo; make bench
.DELETE_ON_ERROR:
.SUFFIXES:

SAN ?= 0
ifeq ($(SAN),1)
O ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
O ?= build
SANFLAGS :=
endif

CC ?= cc
PKGS := libmnl libnftnl libnl-3.0 jansson nettle yaml-0.1 libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CNI_PKGS := libnl-3.0 jansson nettle

WARN := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
	-Wold-style-definition -Wshadow -Wformat=2 -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE \
	-Iinclude -Iagent -Iproxy $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRCS := $(wildcard lib/*.c)
CNI_SRCS := $(wildcard cni/*.c)
AGENT_SRCS := $(wildcard agent/*.c) $(wildcard proxy/*.c)
CTL_SRCS := $(wildcard ctl/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(O)/%.o,$(1))
LIB_OBJS := $(call obj,$(LIB_SRCS))
CNI_OBJS := $(call obj,$(CNI_SRCS))
AGENT_OBJS := $(call obj,$(AGENT_SRCS))
CTL_OBJS := $(call obj,$(CTL_SRCS))
# Units link against every object except the programs' main files.
MAIN_OBJS := $(call obj,cni/main.c agent/main.c ctl/main.c)
TESTABLE_OBJS := $(filter-out $(MAIN_OBJS),$(LIB_OBJS) $(CNI_OBJS) $(AGENT_OBJS))
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/unit/%,$(UNIT_SRCS))

BINS := $(O)/berth-cni $(O)/berth-agent $(O)/berthctl

.PHONY: all units deps check check-one fuzz fuzz-run demo bench clean install
all: $(BINS)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# lib/ as an archive: each program links only the objects it uses, and with
# --as-needed loads only their libraries.
$(O)/libberth.a: $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The plugin is static: it is copied into the host's /opt/cni/bin, where the
# agent image's shared libraries are not, and the runtime execs it once per
# pod, where loading shared objects costs more than its netlink work (in
# make bench's 30-pod burst, a no-op binary with these four libraries has a
# p99 of 87 ms, a static one 50 ms). Debian ships static archives of all four;
# glibc warns that libnl's address helpers would need NSS at run time, which
# the plugin never calls, hence -w. The sanitizers need a dynamic link.
ifeq ($(SAN),1)
CNI_LINK := -Wl,--as-needed $(shell pkg-config --libs $(CNI_PKGS) 2>/dev/null)
else
CNI_LINK := -static -Wl,-w $(shell pkg-config --static --libs $(CNI_PKGS) 2>/dev/null)
endif

$(O)/berth-cni: $(CNI_OBJS) $(O)/libberth.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CNI_LINK)

$(O)/berth-agent: $(AGENT_OBJS) $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(O)/berthctl: $(CTL_OBJS) $(O)/libberth.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -Wl,--as-needed -o $@ $^ $(PKG_LIBS)

$(O)/tests/unit/%: $(O)/tests/unit/%.o $(TESTABLE_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

units: $(UNIT_BINS)

# --- Fuzzing: libFuzzer harnesses, one per parser (clang only). ---
FUZZ_O := build-fuzz
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_O)/%,$(FUZZ_SRCS))
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Iinclude -Iagent -Iproxy $(PKG_CFLAGS) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_LIB_SRCS := $(filter-out cni/main.c cni/datapath.c,$(CNI_SRCS)) $(LIB_SRCS) \
	$(filter-out agent/main.c,$(AGENT_SRCS))
FUZZ_SECONDS ?= 10

$(FUZZ_O)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^ $(PKG_LIBS)

fuzz: $(FUZZ_BINS)

fuzz-run: fuzz
	@for f in $(FUZZ_BINS); do \
		n=$$(basename $$f); mkdir -p $(FUZZ_O)/corpus-$$n; \
		echo "  FUZZ-RUN $$n ($(FUZZ_SECONDS)s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=0 \
			$(FUZZ_O)/corpus-$$n tests/fuzz/seeds/$${n#fuzz_} >$(FUZZ_O)/$$n.log 2>&1 \
			|| { tail -40 $(FUZZ_O)/$$n.log; exit 1; }; \
	done

# --- Dependencies: Debian packages, installed only when missing. ---
deps:
	@tests/install-deps.sh

PYTEST := /usr/bin/python3 -m pytest

# One full pass (units + integration) against the build in $(O).
check-one: all units
	@set -e; for t in $(UNIT_BINS); do echo "  UNIT    $$t"; $$t; done
	BERTH_BIN_DIR=$(CURDIR)/$(O) $(PYTEST) -q tests/integration $(PYTEST_ARGS)

check: deps
	$(MAKE) check-one
	$(MAKE) fuzz-run
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(MAKE) SAN=1 check-one

demo: deps all
	/usr/bin/python3 tests/demo.py --bin-dir $(CURDIR)/$(O)

bench: deps all
	/usr/bin/python3 bench/run.py --bin-dir $(CURDIR)/$(O)

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(O) $(FUZZ_O) -name '*.d' 2>/dev/null)
