package trainer_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// runCLI runs `shoal args... --addr addr` with stdout and stderr captured;
// neither is a terminal, as in `shoal ... | cat`.
func runCLI(t *testing.T, addr string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Main(t.Context(), append(args, "--addr", addr), cli.Env{Stdout: &out, Stderr: &errOut})
	return out.String(), errOut.String(), code
}

var jobIDPattern = regexp.MustCompile(`job ([0-9a-f-]{36}) queued`)

func TestTrainCLIFollowsToTheRegisteredVersion(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	out, errOut, code := runCLI(t, e.addr, "train", "--dataset", "shapes", "--epochs", "2", "--batch-size", "8",
		"--learning-rate", "0.003", "--promote", "always", "--follow")
	if code != cli.ExitOK {
		t.Fatalf("shoal train --follow = exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"queued: small-cnn on shapes snapshot 1, 2 epochs, batch 8", "rate", "train loss", "val acc",
		"test: accuracy", "registered shapes version 1", "promoted shapes version 1 to production", "SUCCEEDED"} {
		if !strings.Contains(out, want) {
			t.Errorf("shoal train --follow output lacks %q:\n%s", want, out)
		}
	}
	// stdout is not a terminal: plain per-epoch lines, no progress redraws.
	if strings.ContainsAny(out, "\r\033") {
		t.Errorf("shoal train --follow | cat wrote control characters:\n%q", out)
	}
	t.Logf("shoal train --follow:\n%s", out)

	id := jobIDPattern.FindStringSubmatch(out)[1]
	listed, _, code := runCLI(t, e.addr, "jobs", "ls", "-o", "json")
	var jobs struct {
		Jobs []struct{ ID, State string } `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(listed), &jobs); code != cli.ExitOK || err != nil || len(jobs.Jobs) != 1 ||
		jobs.Jobs[0].ID != id || jobs.Jobs[0].State != "JOB_STATE_SUCCEEDED" {
		t.Errorf("shoal jobs ls -o json = exit %d, %q (%v); want the succeeded job %s", code, listed, err, id)
	}
	shown, _, code := runCLI(t, e.addr, "jobs", "show", id)
	for _, want := range []string{"state:", "succeeded", "result:", "shapes v1", "epoch", "2 "} {
		if code != cli.ExitOK || !strings.Contains(shown, want) {
			t.Errorf("shoal jobs show = exit %d:\n%s\nwant %q", code, shown, want)
		}
	}
	watched, _, code := runCLI(t, e.addr, "jobs", "watch", id)
	if code != cli.ExitOK || !strings.Contains(watched, "registered shapes version 1") || !strings.HasSuffix(watched, "SUCCEEDED\n") {
		t.Errorf("shoal jobs watch (a finished job) = exit %d:\n%s\nwant its history to SUCCEEDED", code, watched)
	}
}

func TestTrainCLIReportsFailures(t *testing.T) {
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{noRun: true})
	for _, tc := range []struct {
		args []string
		want string
		exit int
	}{
		{[]string{}, "--dataset is required", cli.ExitUsage},
		{[]string{"--dataset", "shapes", "--promote", "sometimes"}, "--promote", cli.ExitUsage},
		{[]string{"--dataset", "shapes", "--epochs", "-1"}, "shoal: spec.epochs = -1", cli.ExitInvalid},
		{[]string{"--dataset", "nope"}, `dataset "nope" not found`, cli.ExitNotFound},
		{[]string{"--dataset", "shapes", "--weight-decay", "-1"}, "shoal: spec.weightDecay", cli.ExitInvalid},
		{[]string{"--dataset", "shapes", "--augment", "crop=2"}, "shoal: spec.augmentation.cropMinScale", cli.ExitInvalid},
		{[]string{"--dataset", "shapes", "--base", "nope:1"}, "no such version", cli.ExitNotFound},
		{[]string{"--dataset", "shapes", "extra"}, "takes 0 argument(s), got 1", cli.ExitUsage},
	} {
		_, errOut, code := runCLI(t, e.addr, append([]string{"train"}, tc.args...)...)
		if code != tc.exit || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "rpc error") {
			t.Errorf("shoal train %q = exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.exit, tc.want)
		}
	}
	out, _, code := runCLI(t, e.addr, "train", "--dataset", "shapes")
	m := jobIDPattern.FindStringSubmatch(out)
	if code != cli.ExitOK || m == nil || !strings.Contains(out, "follow it with: shoal jobs watch "+m[1]) {
		t.Fatalf("shoal train (no follow) = exit %d, %q; want the job queued and how to watch it", code, out)
	}
	id := m[1]

	listed, _, code := runCLI(t, e.addr, "jobs", "ls", "-o", "json")
	if code != cli.ExitOK || !json.Valid([]byte(listed)) || !strings.Contains(listed, id) {
		t.Errorf("shoal jobs ls -o json = exit %d, %q; want valid JSON listing %s", code, listed, id)
	}
	if listed, _, code = runCLI(t, e.addr, "jobs", "ls", "--state", "queued"); code != cli.ExitOK || !strings.Contains(listed, id) || !strings.Contains(listed, "queued") {
		t.Errorf("shoal jobs ls --state queued = exit %d:\n%s\nwant the queued job", code, listed)
	}
	if out, _, code = runCLI(t, e.addr, "jobs", "cancel", id); code != cli.ExitOK || out != "job "+id+": cancelled\n" {
		t.Errorf("shoal jobs cancel (queued) = exit %d, %q; want it cancelled", code, out)
	}
	// Following a job that did not succeed exits with the job-failed code.
	out, errOut, code := runCLI(t, e.addr, "jobs", "watch", id)
	if code != cli.ExitJobFailed || !strings.Contains(out, "CANCELLED") || !strings.Contains(errOut, "shoal: job "+id+" cancelled") {
		t.Errorf("shoal jobs watch (cancelled) = exit %d, stdout %q, stderr %q; want exit %d", code, out, errOut, cli.ExitJobFailed)
	}
	if _, errOut, code = runCLI(t, e.addr, "jobs", "cancel", id); code != cli.ExitConflict {
		t.Errorf("shoal jobs cancel (finished) = exit %d, %q; want exit %d", code, errOut, cli.ExitConflict)
	}
	if _, errOut, code = runCLI(t, e.addr, "jobs", "show", "00000000-0000-0000-0000-000000000000"); code != cli.ExitNotFound {
		t.Errorf("shoal jobs show (no such job) = exit %d, %q; want exit %d", code, errOut, cli.ExitNotFound)
	}
}
