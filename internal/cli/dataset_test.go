package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// Commands that fail before dialling: usage and flag errors. The commands
// against a real dataset service are tested in services/dataset (cli_test.go).
func TestDatasetArgumentErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"create"}, "usage: shoal dataset create"},
		{[]string{"create", "a", "b"}, "usage: shoal dataset create"},
		{[]string{"import", "fish"}, "usage: shoal dataset import"},
		{[]string{"import", "fish", "dir", "--bucket", "b"}, "usage: shoal dataset import"},
		{[]string{"upload", "fish"}, "usage: shoal dataset upload"},
		{[]string{"stats"}, "usage: shoal dataset stats"},
		{[]string{"ls", "fish", "--split", "dev"}, `split "dev"`},
		{[]string{"snapshot", "--bogus"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Dataset(t.Context(), tt.args, &out, &errOut)
			if tt.want == "" {
				if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "Usage: shoal dataset") {
					t.Errorf("Dataset(%q) = %v, stderr %q; want ErrHelp and the usage", tt.args, err, errOut.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Dataset(%q) = %v; want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
