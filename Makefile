# packit-launch — see README.md.
GO ?= go
CONFIG ?= examples/packit-launch.yaml
# Locally, the AWS SDK must not look for an EC2 instance role (a network
# call off this machine); set it to false where the bot runs on EC2.
AWS_EC2_METADATA_DISABLED ?= true
export AWS_EC2_METADATA_DISABLED

.PHONY: run test lint bench build tools fuzz demo soak faults chaos

# Built as deploy/Containerfile builds it: static (no libc mapped, 1.5 MB
# less resident), without the symbol table and DWARF.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o bin/packit-launch ./cmd/packit-launch

# The bot on the example config and the embedded (non-durable) store, which
# only this build (-tags embedded) and the demo's link.
run:
	$(GO) build -tags embedded -o bin/packit-launch-run ./cmd/packit-launch
	./bin/packit-launch-run serve --config $(CONFIG)

# The whole bot against local fakes (GitHub, Launch service) and moto_server:
# a /launch conversation on a pretend PR, as a reviewer sees it. A binary of
# its own (-tags demo): the one make build makes ships none of the fakes.
demo:
	$(GO) build -tags demo -o bin/packit-launch-demo ./cmd/packit-launch
	./bin/packit-launch-demo demo

# The whole suite with the race detector, but the slow fault tests (make
# faults), in at most 5 minutes; brings up what a fresh machine lacks. Each
# package's tests have TEST_BUDGET (go test's -timeout is per package): a
# package that outgrows it fails, and its slow tests move to make faults.
# Then a short run of each fuzz target (make fuzz runs them long).
TEST_BUDGET ?= 4m
test: tools
	$(GO) test -race -count=1 -timeout $(TEST_BUDGET) -tags demo -skip '$(SLOW_TESTS)' ./...
	$(MAKE) fuzz FUZZTIME=30000x  # a count, not a duration: a duration's deadline can end a healthy run with "context deadline exceeded"

tools:
	@bash scripts/ensure-tools.sh

# The degraded-world tests that wait out real retry back-offs and client
# timeouts: TestFaultMatrix with its slow cases too (GitHub not answering
# until the bot's 30 s client timeout), the tests that wait for GitHub's or
# the Launch service's failures to pass, and a replica killed beside a live
# one (asynq's 90 s recovery). make test skips them; CI runs both.
SLOW_TESTS := ^(TestFaultMatrix|TestSSHReadyCommentSurvivesGitHubFailing|TestRateLimitedCommandIsHeldUntilTheReset|TestSecondaryRateLimitIsWaitedOut|TestPackitWaitSurvivesPollErrors|TestCommandThatCannotStartItsLaunchEndsIt|TestGitHubBurstDoesNotDropTheCommand|TestEndToEndGitHubKeepsFailingStillAnswers|TestCrashOfOneOfTwoReplicas)$$
faults: tools
	FAULTS=all $(GO) test -race -count=1 -tags demo -run '$(SLOW_TESTS)' -timeout 20m ./app/ ./cmd/packit-launch/

# Linters at exact versions: staticcheck 2026.2.2 (its module's v0.8.2) and
# deadcode of golang.org/x/tools v0.53.0, both for Go 1.26. vet and
# staticcheck run on both builds (make test's is -tags demo); deadcode on the
# demo build, which holds every file of the other and the demo's uses of the
# fakes. It fails on any function that no binary and no test reaches, and on
# any function outside the fakes (packages named *test, whose API is for
# tests) that only tests reach.
LINT_STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
LINT_DEADCODE ?= golang.org/x/tools/cmd/deadcode@v0.53.0
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags demo ./...
	$(GO) run $(LINT_STATICCHECK) ./...
	$(GO) run $(LINT_STATICCHECK) -tags demo ./...
	@out=$$($(GO) run $(LINT_DEADCODE) -test -tags demo ./...) || exit 1; \
	test -z "$$out" || { echo "$$out"; echo "dead code: no binary or test reaches these"; exit 1; }
	@out=$$($(GO) run $(LINT_DEADCODE) -tags demo -filter '^github\.com/packit/packit-launch($$|/.*([^t]|[^s]t|[^e]st|[^t]est)$$)' ./...) || exit 1; \
	test -z "$$out" || { echo "$$out"; echo "dead code: only tests reach these; test what production calls instead"; exit 1; }

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

# Two replicas of the real binary on Redis Sentinel for CHAOS (default 3
# minutes) under a stream of /launch while the primary is killed at random
# moments: every command answered, no launch with two VMs, no VM leaked.
# Figures in BENCHMARKS.md; not in CI (it takes minutes).
CHAOS ?= 3m
chaos: tools
	CHAOS_DURATION=$(CHAOS) $(GO) test -tags demo -count=1 -run '^TestRedisChaos$$' -v -timeout 30m ./cmd/packit-launch/
