# packit-launch — see README.md.
GO ?= go
CONFIG ?= examples/packit-launch.yaml
# Locally, the AWS SDK must not look for an EC2 instance role (a network
# call off this machine); set it to false where the bot runs on EC2.
AWS_EC2_METADATA_DISABLED ?= true
export AWS_EC2_METADATA_DISABLED

.PHONY: run test lint bench build tools fuzz demo soak faults

build:
	$(GO) build -o bin/packit-launch ./cmd/packit-launch

# The bot on the example config and the embedded (non-durable) store.
run: build
	./bin/packit-launch serve --config $(CONFIG)

# The whole bot against local fakes (GitHub, Launch service) and moto_server:
# a /launch conversation on a pretend PR, as a reviewer sees it. A binary of
# its own (-tags demo): the one make build makes ships none of the fakes.
demo:
	$(GO) build -tags demo -o bin/packit-launch-demo ./cmd/packit-launch
	./bin/packit-launch-demo demo

# The whole suite with the race detector; brings up what a fresh machine lacks.
# Then a short run of each fuzz target (make fuzz runs them long).
test: tools
	$(GO) test -race -count=1 -timeout 30m -tags demo ./...
	$(MAKE) fuzz FUZZTIME=100000x  # a count, not a duration: a duration's deadline can end a healthy run with "context deadline exceeded"

tools:
	@bash scripts/ensure-tools.sh

# TestFaultMatrix with its slow cases too (GitHub not answering until the
# bot's 30 s client timeout); make test runs the others. CI runs both.
faults: tools
	FAULTS=all $(GO) test -race -count=1 -tags demo -run '^TestFaultMatrix$$' -timeout 20m ./app/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Every Go benchmark; -tags demo for the real binary's memory over 10,000
# launches (cmd/packit-launch). Figures and targets: BENCHMARKS.md.
bench: tools
	$(GO) test -tags demo -run '^$$' -bench . -benchmem -timeout 30m ./...

# Every parser that reads what the public sends: the comment grammar, the
# repo config and the webhook intake. FUZZTIME=10m for a real run.
FUZZTIME ?= 10m
fuzz:
	$(GO) test ./commands -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./config -run '^$$' -fuzz '^FuzzParseRepo$$' -fuzztime $(FUZZTIME)
	$(GO) test ./app -run '^$$' -fuzz '^FuzzIntake$$' -fuzztime $(FUZZTIME)

# The real binary for SOAK (default 10 minutes) under a steady mix of
# deliveries and commands against the fakes, moto and redis-server, with
# one-minute retentions: RSS, goroutines and Redis keys must stay flat.
SOAK ?= 10m
soak: tools
	SOAK_DURATION=$(SOAK) $(GO) test -tags demo -count=1 -run '^TestSoak$$' -v -timeout 40m ./cmd/packit-launch/
