# Shoal's entry points. `make run` starts the platform on embedded defaults;
# `make test` runs the whole suite (what CI runs).
.PHONY: run build install ui test generate lint clean

# The web console is built first: the binary embeds it.
build: ui
	go build -o bin/shoal ./cmd/shoal

# Puts `shoal` on the PATH: $(go env GOPATH)/bin or ~/.local/bin, whichever
# is on it, and says where (see the script).
install: build
	scripts/install.sh

ui:
	scripts/build-ui.sh

run:
	scripts/run.sh

test:
	scripts/test.sh

# Flaky-test hunt: the Go suite N times under -race with the cores loaded
# (FLAKE_RUNS, FLAKE_PKGS, FLAKE_LOAD, FLAKE_UI: see the script).
.PHONY: flake
flake:
	scripts/flake.sh

generate:
	scripts/protodeps.sh
	scripts/buf.sh generate
	go run ./cmd/shoal-openapi gen/openapi/shoal.swagger.json
	scripts/gen-python.sh
	scripts/gen-typescript.sh

lint:
	scripts/check-proto.sh

# The fast check for every change (about a minute, warm): gofmt, vet,
# golangci-lint, go test -short without servers, files over 500 lines say
# why, and a duplicate-code scan (informational). See the script.
.PHONY: check
check:
	scripts/check.sh

clean:
	rm -rf bin .build internal/webui/dist/app

# Fault injection: kill -9, 30 s PostgreSQL and S3 outages, full disks
# (minutes; RELIABILITY.md). make test runs all but the outages.
.PHONY: fault
fault:
	scripts/fault.sh

# Go native fuzzing of the parsers of outside bytes: each target for
# FUZZTIME (default 5m), one at a time (see the script).
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh

# Every ONNX export of the PyTorch corpus (scripts/export-corpus.py: seven
# torchvision families and more, opsets 11/13/17, fixed and dynamic batch,
# logits and softmax) through import, fine-tuning and export; prints the
# table of results (an hour or more on 2 cores: see the script).
.PHONY: test-exports
test-exports:
	scripts/test-exports.sh

# Training throughput and Fashion-MNIST accuracy (slow: see the script).
.PHONY: bench-train
bench-train:
	scripts/bench-train.sh

# Fine-tuning accuracy against PyTorch: one pretrained export, one recipe,
# the same images, test accuracy side by side (half an hour or more on 2 cores
# under load: see BENCHMARKS.md).
.PHONY: bench-train-parity
bench-train-parity:
	scripts/bench-train.sh accuracy-parity

# What a refused /predict costs the server and the load generator
# (seconds; see the script).
.PHONY: bench-refusals
bench-refusals:
	scripts/bench-refusals.sh

# Inference benchmarks: a real server on free ports, the default small model
# and ResNet-18; prints the Markdown tables of BENCHMARKS.md (see the script).
.PHONY: bench
bench:
	scripts/bench-inference.sh

# Overload soak: twice the saturation throughput of /predict, open loop,
# for SOAK_DURATION (default 10m) while an import and a training job run;
# checks 429s, throughput, p99, memory, goroutines and open files
# (RELIABILITY.md, "Overload and soak"; not part of make test).
.PHONY: soak
soak:
	scripts/soak.sh

# The container image built from deployments/Dockerfile with podman (local
# base images made with debootstrap; no registry needed) and the newcomer's
# path run against it (scripts/test-image.sh).
.PHONY: test-image
test-image:
	scripts/test-image.sh

# The same image, and the compose stack's services as its containers, with
# kills and a PostgreSQL restart (scripts/test-deploy.sh; a step of make test).
.PHONY: test-deploy
test-deploy:
	scripts/test-deploy.sh

# At a release: record the schema its migrations create, per dialect, in
# tests/upgrade/testdata; until the next release, make test fails on a
# migration that is not additive on it (README, "Rolling upgrades").
.PHONY: schema-snapshot
schema-snapshot:
	scripts/schema-snapshot.sh

# The last release and this tree side by side on one MariaDB, then one
# PostgreSQL database, each reading what the other wrote (builds the last
# release from git; not in make test; see the script).
.PHONY: test-upgrade
test-upgrade:
	scripts/test-upgrade.sh
