# The two commands that matter: `make run` and `make test` (see README.md).
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build run test unit asan fuzz lint format format-check tidy cppcheck bench bench-soak bench-sidebyside clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Starts sipd with its embedded default (127.0.0.1:5060).
run: build
	./$(BUILD)/sipd

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite again under ASan+UBSan, built with clang.
asan: deps
	CC=clang cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSIPD_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# Each libFuzzer target for FUZZ_SECONDS, seeded from the corpus; any finding fails.
fuzz: deps
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSIPD_FUZZ=ON -DSIPD_SANITIZE=ON -DBUILD_TESTING=OFF >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS)
	./fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

test: deps lint unit asan fuzz
	@echo "make test: all passed"

lint: format-check tidy cppcheck

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find src tests fuzz bench -name '*.[ch]')

format:
	clang-format -i $(SOURCES)

format-check: deps
	clang-format --dry-run --Werror $(SOURCES)

tidy: build
	./scripts/tidy.sh $(BUILD)

cppcheck: deps
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	  --inline-suppr --suppress=missingIncludeSystem -I src src

# Timed, on loopback; figures and commands in docs/PERFORMANCE.md.
BENCH_SECONDS ?= 10
SOAK_COUNT ?= 100000
bench: build
	./$(BUILD)/parse_bench
	@if [ -x ./$(BUILD)/location_bench ]; then ./$(BUILD)/location_bench; fi
	./bench/transport_bench.py --build $(BUILD) --seconds $(BENCH_SECONDS) \
	  --soak-count $(SOAK_COUNT)
	$(MAKE) bench-sidebyside

# sipd beside Kamailio 5.6 (bench/kamailio/): REGISTER/s with and without
# digest, bytes per binding, calls/s through the record-routing proxy, and
# a SIPp cross-check. SIDEBYSIDE_SECONDS per run of the rate search.
SIDEBYSIDE_SECONDS ?= 20
SIDEBYSIDE_USERS ?= 100000
SIDEBYSIDE_MEM_USERS ?= 1000000
SIDEBYSIDE_ONLY ?= reg,auth,mem,calls,sipp
SIDEBYSIDE_ARGS ?=
bench-sidebyside: build
	./bench/sidebyside.py --build $(BUILD) --seconds $(SIDEBYSIDE_SECONDS) \
	  --users $(SIDEBYSIDE_USERS) --mem-users $(SIDEBYSIDE_MEM_USERS) \
	  --only $(SIDEBYSIDE_ONLY) $(SIDEBYSIDE_ARGS)

# The TLS churn soak alone: SOAK_COUNT connections, 1 in 10 reset mid-handshake.
bench-soak: build
	./bench/transport_bench.py --build $(BUILD) --only soak --soak-count $(SOAK_COUNT) \
	  --json bench/results/transport_soak.json

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
