# anprsec: the two set-up commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/anprsec
FUZZTIME ?= 5s

.PHONY: build run test test-short fuzz bench bench-italia vet clean

build:
	$(GO) build -o $(BIN) ./cmd/anprsec

# First run on embedded defaults: init (idempotent), then the daemon.
run: build
	./$(BIN) init
	./$(BIN) run

# The whole suite: vet, unit, script and end-to-end tests, then each fuzz
# target briefly.
test: vet
	$(GO) test -count=1 ./...
	$(MAKE) fuzz

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

# Every fuzz target, FUZZTIME each (go test -fuzz takes one target at a time).
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded"
# when -fuzztime ends while a worker is busy (go.dev/issue/75804, fixed in
# Go 1.27): without a failing input written, that is no finding, and the
# target is run once more to be sure.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    for try in 1 2; do \
	      if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg > /tmp/anprsec-fuzz.log 2>&1; then break; fi; \
	      if [ $$try = 1 ] && grep -q 'context deadline exceeded' /tmp/anprsec-fuzz.log && ! grep -q 'Failing input written' /tmp/anprsec-fuzz.log; then \
	        echo "  the fuzz coordinator's deadline race (go.dev/issue/75804), no failing input: once more"; continue; \
	      fi; \
	      cat /tmp/anprsec-fuzz.log; exit 1; \
	    done; \
	  done; \
	done

# Benchmarks with their baselines, one run each (figures in the README).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -benchmem ./ingest/census/
	$(GO) test -run '^$$' -bench RecordDecode -benchmem ./store/
	$(GO) test -run '^$$' -bench . -benchmem ./pki/
	$(GO) test -run '^$$' -bench . -benchtime 1x ./export/audit/
	$(GO) test -run '^$$' -bench . -benchtime 1x ./jobs/
	$(GO) test -run '^$$' -bench Amplification -benchtime 1x ./e2e/
	$(GO) test -run '^$$' -bench . -benchtime 3s ./pkihttp/

# The national end-to-end benchmark (README, "Performance"): an
# Italy-scale site through every onboarding stage, each as its own process,
# against its floor. The site with its 40,000-key pool is made once and
# cached (BENCH_ITALIA_FLAGS=-cache DIR to move it; -comuni N for a part of
# Italy).
bench-italia: build
	$(GO) run ./cmd/bench-italia -bin $(BIN) $(BENCH_ITALIA_FLAGS)

clean:
	rm -rf bin
