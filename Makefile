# anprsec: the two set-up commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/anprsec
FUZZTIME ?= 5s

.PHONY: build run test test-short fuzz bench vet clean

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
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg > /tmp/anprsec-fuzz.log 2>&1 || { cat /tmp/anprsec-fuzz.log; exit 1; }; \
	  done; \
	done

# Benchmarks with their baselines, one run each (figures in the README).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -benchmem ./ingest/census/
	$(GO) test -run '^$$' -bench . -benchmem ./pki/
	$(GO) test -run '^$$' -bench . -benchtime 1x ./export/audit/
	$(GO) test -run '^$$' -bench . -benchtime 1x ./jobs/
	$(GO) test -run '^$$' -bench Amplification -benchtime 1x ./e2e/
	$(GO) test -run '^$$' -bench . -benchtime 3s ./pkihttp/

clean:
	rm -rf bin
