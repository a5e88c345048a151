# Shoal's entry points. `make run` starts the platform on embedded defaults;
# `make test` runs the whole suite (what CI runs).
.PHONY: run build ui test generate lint clean

# The web console is built first: the binary embeds it.
build: ui
	go build -o bin/shoal ./cmd/shoal

ui:
	scripts/build-ui.sh

run:
	scripts/run.sh

test:
	scripts/test.sh

generate:
	scripts/protodeps.sh
	go tool -modfile=tools.go.mod buf generate

lint:
	scripts/check-proto.sh

clean:
	rm -rf bin .build internal/webui/dist/app

# Go native fuzzing of the parsers of outside bytes: each target for
# FUZZTIME (default 5m), one at a time (see the script).
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh

# Training throughput and Fashion-MNIST accuracy (slow: see the script).
.PHONY: bench-train
bench-train:
	scripts/bench-train.sh

# Inference benchmarks: a real server on free ports, the default small model
# and ResNet-18; prints the Markdown tables of BENCHMARKS.md (see the script).
.PHONY: bench
bench:
	scripts/bench-inference.sh
