# S3 Gatekeeper - plain GNU make build.
#
#   make            build build/gatekeeper
#   make run        install missing packages, build, start on embedded defaults
#   make test       unit + end-to-end + fuzz smoke tests
#   make js-deps    the pinned JavaScript test packages (npm ci)
#   make asan       the whole test suite under ASan + UBSan
#   make fuzz       build the libFuzzer targets and run each for FUZZ_SECONDS
#   make bench      gatekeeper vs nginx on loopback, the s3 redirect mode
#                   and the S3 endpoint against a local Ceph RGW, a perf
#                   profile of the v1 scenario, the audit writer alone, the
#                   fs data path (1 GiB down/up), idle connections, share
#                   send/receive vs tar|zstd|age + aws s3 cp; results in
#                   BENCHMARKS.md
#   make lib        libgatekeeper.a and .so (include/gatekeeper/sign.h)
#   make soak       the crash tests at full length (20 kill -9 rounds per
#                   audit backend, 20 of store/checkpoint recovery; make
#                   test runs 5 and 4) and the 3-instance HAProxy test with
#                   60 s of load (make test: 6 s)
#   make screenshots  the browser tests, writing their screenshots of the
#                   vendor example and the console into docs/
#   make format     clang-format the sources
#   make install    binary, systemd unit, /etc/gatekeeper, and (as root,
#                   without DESTDIR) the gatekeeper user, /var/lib/gatekeeper
#                   and the keys; PREFIX (/usr/local), DESTDIR
#   make deb        build/gatekeeper_VERSION_ARCH.deb (dpkg-deb)

CC      ?= cc
BUILD   ?= build
PKGS    := libmicrohttpd openssl sqlite3 inih jansson libmaxminddb libcurl \
	   expat libpq gnutls libsystemd geoip libzstd zlib libsodium
SAN     ?=
, := ,

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# Hardening flags, each probed once with the compiler in use.
probe = $(shell printf 'int main(void){return 0;}' | \
	$(CC) $(1) -x c -o /dev/null - >/dev/null 2>&1 && echo "$(1)")
ifeq ($(SAN),)
HARDEN := $(call probe,-D_FORTIFY_SOURCE=2 -O2) \
	  $(call probe,-fstack-protector-strong) \
	  $(call probe,-fstack-clash-protection)
HARDEN_LD := $(call probe,-pie -fPIE) $(call probe,-Wl$(,)-z$(,)relro$(,)-z$(,)now)
OPT := -O2
else
HARDEN :=
HARDEN_LD :=
OPT := -O1 -fno-omit-frame-pointer -fsanitize=$(SAN) -fno-sanitize-recover=all
endif

WARN   := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith \
	  -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(HARDEN) -fPIE \
	      -Isrc -Iinclude $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(HARDEN_LD) $(if $(SAN),-fsanitize=$(SAN)) $(LDFLAGS)
LIBS := $(PKG_LIBS) -lpthread -lm

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/main.c'))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all run test unit e2e asan fuzz fuzz-build bench format clean deps \
	lib soak js-deps install uninstall deb screenshots

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
DESTDIR ?=
VERSION ?= 0.1.$(shell git rev-list --count HEAD 2>/dev/null || echo 0)

all: $(BUILD)/gatekeeper lib

deps:
	@bash scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libgk.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/gatekeeper: $(BUILD)/obj/src/main.o $(BUILD)/libgk.a
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/t.h tests/unit/rng.h $(BUILD)/libgk.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -DTESTDATA='"$(abspath tests/data)"' \
		$(LDFLAGS_ALL) -o $@ $< $(BUILD)/libgk.a $(LIBS)

# libgatekeeper: the vendor signing library (v1 URLs, v2 tokens). Built
# from its own small set of sources, which include only the public header
# and OpenSSL, so vendors link it with -lcrypto alone.
SIGNLIB_SRC := src/sign/sign.c
SIGNLIB_OBJ := $(SIGNLIB_SRC:%.c=$(BUILD)/pic/%.o)
SIGNLIB_CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(HARDEN) -fPIC \
	-fvisibility=default -Iinclude $(CFLAGS)

$(BUILD)/pic/%.o: %.c include/gatekeeper/sign.h
	@mkdir -p $(dir $@)
	$(CC) $(SIGNLIB_CFLAGS) -c $< -o $@

$(BUILD)/libgatekeeper.a: $(SIGNLIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libgatekeeper.so: $(SIGNLIB_OBJ)
	$(CC) -shared -Wl,-soname,libgatekeeper.so -Wl,-z,relro,-z,now \
		$(if $(SAN),-fsanitize=$(SAN)) $(LDFLAGS) -o $@ $^ -lcrypto

lib: $(BUILD)/libgatekeeper.a $(BUILD)/libgatekeeper.so

# the address is checked first, so a second 'make run' says so at once
run:
	@bash scripts/run.sh --check-port
	@$(MAKE) --no-print-directory deps $(BUILD)/gatekeeper
	@bash scripts/run.sh $(BUILD)/gatekeeper

unit: $(UNIT_BIN)
	@bash tests/unit/run.sh $(UNIT_BIN)

# The JavaScript the tests use (playwright-core, jose), exactly as pinned in
# tests/browser/package-lock.json; npm ci again only when that file changes.
JS_STAMP := tests/browser/node_modules/.gk-npm-ci \
	    tests/e2e/js/node_modules/.gk-npm-ci
js-deps: $(JS_STAMP)
tests/browser/node_modules/.gk-npm-ci: tests/browser/package.json \
	    tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
# the AWS SDK for JavaScript v3, for the S3 endpoint's aws-chunked tests
tests/e2e/js/node_modules/.gk-npm-ci: tests/e2e/js/package.json \
	    tests/e2e/js/package-lock.json
	cd tests/e2e/js && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

e2e: $(BUILD)/gatekeeper lib $(BUILD)/tests/test_s3 $(JS_STAMP)
	GK_BIN=$(abspath $(BUILD)/gatekeeper) /usr/bin/python3 -m pytest -q \
		-p no:cacheprovider tests/e2e

test: deps
	@$(MAKE) --no-print-directory all unit
	@# the benchmark programs build with the code they measure
	@$(MAKE) --no-print-directory $(BUILD)/policy_bench \
		$(BUILD)/audit_writer
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-5}
	@$(MAKE) --no-print-directory e2e

soak: deps $(BUILD)/gatekeeper
	GK_CRASH_ROUNDS=20 GK_RECOVERY_ROUNDS=20 GK_CLUSTER_SECONDS=60 \
		GK_BIN=$(abspath $(BUILD)/gatekeeper) \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider \
		tests/e2e/test_audit_crash.py tests/e2e/test_crash_recovery.py \
		tests/e2e/test_cluster.py

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=address,undefined \
		all unit e2e

FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -Iinclude $(PKG_CFLAGS) \
	       -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libgk.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_BUILD)/libgk.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libgk.a \
		$(LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@bash tests/fuzz/run.sh $(FUZZ_BUILD) $${FUZZ_SECONDS:-60}

bench: deps $(BUILD)/gatekeeper $(BUILD)/policy_bench $(BUILD)/tests/test_s3 \
	$(BUILD)/audit_writer
	@$(BUILD)/policy_bench
	@bash tests/bench/run.sh $(BUILD)/gatekeeper
	@bash tests/bench/s3.sh $(BUILD)/gatekeeper $(BUILD)/tests/test_s3
	@/usr/bin/python3 tests/bench/profile.py $(BUILD)/gatekeeper
	@/usr/bin/python3 tests/bench/data_bench.py $(BUILD)/gatekeeper \
		$(BUILD)/audit_writer
	@/usr/bin/python3 tests/bench/audit_bench.py $(BUILD)/gatekeeper
	@bash tests/bench/share.sh $(BUILD)/gatekeeper
	@bash tests/bench/s3api.sh $(BUILD)/gatekeeper

# the audit writer alone, durable records per second
$(BUILD)/audit_writer: tests/bench/audit_writer.c $(BUILD)/libgk.a
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libgk.a $(LIBS)

# the CIDR trie with 10 and 100,000 entries
$(BUILD)/policy_bench: tests/bench/policy_bench.c tests/unit/rng.h \
		$(BUILD)/libgk.a
	$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< \
		$(BUILD)/libgk.a $(LIBS)

screenshots: $(BUILD)/gatekeeper
	GK_SCREENSHOTS=$(abspath docs) GK_BIN=$(abspath $(BUILD)/gatekeeper) \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider \
		tests/e2e/test_vendor_example.py tests/e2e/test_console.py \
		tests/e2e/test_console_grants.py

install: $(BUILD)/gatekeeper
	BIN=$(BUILD)/gatekeeper DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) \
		SYSCONFDIR=$(SYSCONFDIR) LOCALSTATEDIR=$(LOCALSTATEDIR) \
		sh packaging/install.sh

# removes the program files; keeps the config, the state and the user
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/gatekeeper \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/gatekeeper.service
	rm -rf $(DESTDIR)$(PREFIX)/lib/gatekeeper \
		$(DESTDIR)$(PREFIX)/share/doc/gatekeeper

deb: $(BUILD)/gatekeeper
	sh packaging/mkdeb.sh $(BUILD)/gatekeeper $(VERSION) $(BUILD)

format:
	clang-format -i $$(find src tests include -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

# the web files are built into the binary (src/gate/demo.c, .incbin)
$(BUILD)/obj/src/gate/demo.o $(FUZZ_BUILD)/obj/src/gate/demo.o: \
	web/demo.html
$(BUILD)/obj/src/gate/assets.o $(FUZZ_BUILD)/obj/src/gate/assets.o: \
	web/gatekeeper.js web/gatekeeper.d.ts
$(BUILD)/obj/src/gate/console.o $(FUZZ_BUILD)/obj/src/gate/console.o: \
	web/console/index.html web/console/console.js web/console/console.css

-include $(LIB_OBJ:.o=.d) $(BUILD)/obj/src/main.d $(FUZZ_OBJ:.o=.d)
