package trainer_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

func TestTrainCLIFollowsToTheRegisteredVersion(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	var out, errOut bytes.Buffer
	err := cli.Train(t.Context(), []string{"--addr", e.addr, "--dataset", "shapes", "--epochs", "2", "--batch-size", "8",
		"--learning-rate", "0.003", "--promote", "always", "--follow"}, &out, &errOut)
	if err != nil {
		t.Fatalf("shoal train --follow = %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"queued: small-cnn on shapes snapshot 1, 2 epochs, batch 8", "rate", "train loss", "val acc",
		"test: accuracy", "registered shapes version 1", "promoted shapes version 1 to production", "SUCCEEDED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("shoal train --follow output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("shoal train --follow:\n%s", out.String())
}

func TestTrainCLIReportsFailures(t *testing.T) {
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{noRun: true})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--dataset is required"},
		{[]string{"--dataset", "shapes", "--promote", "sometimes"}, "--promote"},
		{[]string{"--dataset", "shapes", "--epochs", "-1"}, "InvalidArgument: spec.epochs = -1"},
		{[]string{"--dataset", "nope"}, "NotFound"},
		{[]string{"--dataset", "shapes", "--weight-decay", "-1"}, "InvalidArgument: spec.weight_decay"},
		{[]string{"--dataset", "shapes", "--augment", "crop=2"}, "InvalidArgument: spec.augmentation.crop_min_scale"},
		{[]string{"--dataset", "shapes", "--base", "nope:1"}, "NotFound"},
		{[]string{"--dataset", "shapes", "extra"}, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		err := cli.Train(t.Context(), append([]string{"--addr", e.addr}, tc.args...), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shoal train %q = %v; want an error containing %q", tc.args, err, tc.want)
		}
	}
	var out bytes.Buffer
	if err := cli.Train(t.Context(), []string{"--addr", e.addr, "--dataset", "shapes"}, &out, &out); err != nil ||
		!strings.Contains(out.String(), "shoal train --watch ") {
		t.Errorf("shoal train (no follow) = %v, %q; want the job queued and how to watch it", err, out.String())
	}
}
