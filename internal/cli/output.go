package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	"github.com/shoalml/shoal/internal/gateway"
)

// output is the -o/--output flag of the commands that get or list things:
// a table for people, or the answer's message as JSON (exactly what the REST
// API answers) or YAML (the same document) for scripts.
type output string

const (
	outputTable output = "table"
	outputJSON  output = "json"
	outputYAML  output = "yaml"
)

func (o *output) String() string { return string(*o) }
func (o *output) Type() string   { return "format" }

func (o *output) Set(s string) error {
	switch v := output(strings.ToLower(s)); v {
	case outputTable, outputJSON, outputYAML:
		*o = v
		return nil
	}
	return fmt.Errorf("%q: want table, json or yaml", s)
}

// addOutputFlag gives cmd the -o/--output flag.
func addOutputFlag(cmd *cobra.Command) *output {
	o := outputTable
	cmd.Flags().VarP(&o, "output", "o", "output format: table, json or yaml (json is what the REST API answers)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return &o
}

// structured reports whether o asks for JSON or YAML rather than a table.
func (o output) structured() bool { return o == outputJSON || o == outputYAML }

// print writes m as JSON or YAML.
func (o output) print(w io.Writer, m proto.Message) error {
	compact, err := gateway.MarshalJSON(m)
	if err != nil {
		return err
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact, "", "  "); err != nil {
		return err
	}
	b := indented.Bytes()
	if o == outputYAML {
		if b, err = jsonToYAML(b); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// jsonToYAML rewrites a JSON document as block-style YAML, keeping its key
// order and its strings as strings.
func jsonToYAML(b []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var plain func(n *yaml.Node)
	plain = func(n *yaml.Node) {
		n.Style &^= yaml.FlowStyle | yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
		for _, c := range n.Content {
			plain(c)
		}
	}
	plain(&doc)
	var sb strings.Builder
	enc := yaml.NewEncoder(&sb)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(sb.String()), nil
}
