package onnxrt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A user's model is parsed by ONNX Runtime's C++ code, where a bug that a
// hostile file reaches is a signal, not a Go panic, and would take every
// service of the process down with it. InspectIsolated parses the file in
// a child process instead: the same executable, started with the variables
// below, which the init function of this package recognises before main
// runs. It works in any binary that links this package (shoal, and the
// test binaries of the packages that upload models), with no subcommand.
const (
	childLibraryEnv = "SHOAL_ONNXRT_CHILD_LIBRARY" // the child's ONNX Runtime library
	childFileEnv    = "SHOAL_ONNXRT_CHILD_FILE"    // the model to inspect
	childMemoryEnv  = "SHOAL_ONNXRT_CHILD_MEMORY"  // RLIMIT_DATA in bytes; 0: none
)

// Exit codes of the child: Go's runtime itself exits with 2 on a fatal
// error, so the child's own codes start above it.
const (
	childInvalid = 3 // not a model ONNX Runtime can load: stderr says why
	childFailed  = 4 // the child could not do its work (e.g. load the library)
)

func init() {
	if lib, ok := os.LookupEnv(childLibraryEnv); ok {
		os.Exit(childMain(lib, os.Getenv(childFileEnv), os.Getenv(childMemoryEnv), os.Stdout, os.Stderr))
	}
}

// childMain inspects file and writes its ModelInfo as JSON to stdout.
func childMain(lib, file, memory string, stdout, stderr io.Writer) int {
	if n, err := strconv.ParseUint(memory, 10, 64); err == nil && n > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			fmt.Fprintf(stderr, "setting the memory limit: %v", err)
			return childFailed
		}
	}
	rt, err := Load(Config{Library: lib})
	if err != nil {
		fmt.Fprint(stderr, err)
		return childFailed
	}
	info, err := rt.InspectFile(file)
	if err != nil {
		fmt.Fprint(stderr, strings.TrimPrefix(err.Error(), ErrInvalidModel.Error()+": "))
		if errors.Is(err, ErrInvalidModel) {
			return childInvalid
		}
		return childFailed
	}
	if err := json.NewEncoder(stdout).Encode(info); err != nil {
		return childFailed
	}
	return 0
}

// Isolation bounds the child process InspectIsolated runs.
type Isolation struct {
	// Timeout ends a child that takes longer: the model is refused.
	Timeout time.Duration
	// MemoryBytes bounds the child's data segment (RLIMIT_DATA: its heap,
	// Go's and ONNX Runtime's); 0 sets no bound. A model whose parsing
	// needs more is refused.
	MemoryBytes uint64
}

// childOutputLimit bounds what is kept of a child's stdout and stderr.
const childOutputLimit = 1 << 20

// InspectIsolated is InspectFile run in a child process within iso's
// bounds. A model that crashes ONNX Runtime, or exceeds the bounds, fails
// with ErrInvalidModel and a reason; the calling process is untouched. An
// error that is not ErrInvalidModel is the server's (the executable or the
// library cannot be started), or ctx's.
func (r *Runtime) InspectIsolated(ctx context.Context, path string, iso Isolation) (ModelInfo, error) {
	self, err := os.Executable()
	if err != nil {
		return ModelInfo{}, fmt.Errorf("onnxrt: finding this executable: %w", err)
	}
	run := ctx
	if iso.Timeout > 0 {
		var cancel context.CancelFunc
		run, cancel = context.WithTimeout(ctx, iso.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(run, self) //nolint:gosec // this program runs itself (os.Executable), with no argument
	cmd.Env = []string{
		childLibraryEnv + "=" + r.library,
		childFileEnv + "=" + path,
		childMemoryEnv + "=" + strconv.FormatUint(iso.MemoryBytes, 10),
		"GOTRACEBACK=none", // a crash is reported by its signal, not a dump
	}
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = childOutputLimit, childOutputLimit
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	switch {
	case err == nil:
		var info ModelInfo
		if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
			return ModelInfo{}, fmt.Errorf("onnxrt: reading the inspection's answer: %w", err)
		}
		return info, nil
	case ctx.Err() != nil:
		return ModelInfo{}, ctx.Err()
	case run.Err() != nil:
		return ModelInfo{}, fmt.Errorf("%w: reading it took ONNX Runtime longer than %s", ErrInvalidModel, iso.Timeout)
	case !errors.As(err, &exit):
		return ModelInfo{}, fmt.Errorf("onnxrt: starting the inspection: %w", err)
	case exit.ExitCode() == childInvalid:
		return ModelInfo{}, fmt.Errorf("%w: %s", ErrInvalidModel, msg)
	case exit.ExitCode() == childFailed:
		return ModelInfo{}, fmt.Errorf("onnxrt: inspection: %s", msg)
	}
	// Killed by a signal, or Go's runtime gave up (out of memory): the
	// file made ONNX Runtime fail in a way no error reports.
	how := exit.String()
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		how = "it ended with " + ws.Signal().String()
	} else if strings.Contains(msg, "out of memory") || iso.MemoryBytes > 0 {
		how = fmt.Sprintf("it ran out of memory (%d bytes allowed) or failed (%s)", iso.MemoryBytes, exit.String())
	}
	return ModelInfo{}, fmt.Errorf("%w: ONNX Runtime could not read it safely: %s", ErrInvalidModel, how)
}

// limitedBuffer keeps the first limit bytes written to it and discards the
// rest, so a child cannot fill the parent's memory. (It does not embed
// bytes.Buffer, whose ReadFrom io.Copy would use instead of Write.)
type limitedBuffer struct {
	buf   bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *limitedBuffer) String() string { return b.buf.String() }
