// Package config loads Shoal's configuration from defaults, an optional YAML
// file, SHOAL_* environment variables and command-line flags, in that order
// of precedence (later wins).
//
// Every setting is a flag; the YAML file and the environment are other ways
// to set the same flags, so the three can never disagree on names:
//
//	flag   --db.max-open-conns=20
//	YAML   db: {max-open-conns: 20}
//	env    SHOAL_DB_MAX_OPEN_CONNS=20
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FileFlag is the flag naming the YAML file.
const FileFlag = "config.file"

// EnvPrefix starts every environment variable Shoal reads.
const EnvPrefix = "SHOAL_"

// EnvName is the environment variable that sets the flag name.
func EnvName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return EnvPrefix + strings.ToUpper(r.Replace(flagName))
}

// Load sets the flags of fs from the YAML file (named by --config.file or
// SHOAL_CONFIG_FILE), then the environment, then args. fs must already hold
// every flag with its default, and must not define config.file itself.
// lookupEnv is os.LookupEnv outside tests.
func Load(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	var file string
	fs.StringVar(&file, FileFlag, "", "YAML configuration file; its keys are the flag names, nested at each '.'")

	// The file must be read before the environment and flags are applied,
	// yet its name can come from either, so find it first.
	file, err := findFile(args, lookupEnv)
	if err != nil {
		return err
	}
	if file != "" {
		if err := loadFile(fs, file); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == FileFlag {
			return
		}
		if v, ok := lookupEnv(EnvName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %w", EnvName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (settings are flags: --name=value)", fs.Arg(0))
	}
	return nil
}

// findFile returns the config file named on the command line or in the
// environment; the command line wins.
func findFile(args []string, lookupEnv func(string) (string, bool)) (string, error) {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != FileFlag {
			continue
		}
		if hasValue {
			return value, nil
		}
		if i+1 >= len(args) {
			return "", fmt.Errorf("flag --%s needs a file name", FileFlag)
		}
		return args[i+1], nil
	}
	v, _ := lookupEnv(EnvName(FileFlag))
	return v, nil
}

func loadFile(fs *flag.FlagSet, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return apply(fs, file, data)
}

// apply sets the flags of fs from data, the YAML file named file. Values
// are taken as written and parsed by the flags, as on the command line: a
// plain `secret-key: 0123` is "0123", not YAML's octal 83.
func apply(fs *flag.FlagSet, file string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	f := flattener{values: map[string]string{}, merged: map[string]string{}}
	if len(doc.Content) > 0 {
		if err := f.flatten("", doc.Content[0], false, 0); err != nil {
			return fmt.Errorf("config file %s: %w", file, err)
		}
	}
	values := f.values
	for name, v := range f.merged {
		if _, ok := values[name]; !ok {
			values[name] = v
		}
	}
	var errs []error
	for _, name := range sortedKeys(values) {
		if fs.Lookup(name) == nil || name == FileFlag {
			errs = append(errs, fmt.Errorf("config file %s: unknown setting %q (see shoal serve --help for the settings)", file, name))
			continue
		}
		if err := fs.Set(name, values[name]); err != nil {
			errs = append(errs, fmt.Errorf("config file %s: %s: %w", file, name, err))
		}
	}
	return errors.Join(errs...)
}

// Bounds on what a config file may expand to: aliases can make a small
// file name a great many settings, or a mapping that holds itself.
const (
	maxDepth    = 32
	maxSettings = 10000
)

// flattener turns nested mappings into flag names joined by '.', and lists
// into comma-separated values, as list flags take them.
type flattener struct {
	values map[string]string // written in the file
	merged map[string]string // brought in by "<<" merge keys; values win
	n      int
}

func (f *flattener) flatten(prefix string, n *yaml.Node, merged bool, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: nested more than %d levels deep", prefix, maxDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return f.flatten(prefix, n.Alias, merged, depth+1)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				if err := f.merge(prefix, v, depth+1); err != nil {
					return err
				}
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: keys must be plain names", orTop(prefix))
			}
			name := k.Value
			if prefix != "" {
				name = prefix + "." + name
			}
			if err := f.flatten(name, v, merged, depth+1); err != nil {
				return err
			}
		}
		return nil
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, item := range n.Content {
			for item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: lists may hold only plain values", orTop(prefix))
			}
			parts[i] = scalar(item)
		}
		return f.set(prefix, strings.Join(parts, ","), merged)
	case yaml.ScalarNode:
		if prefix == "" {
			return errors.New("the file must be a mapping of settings")
		}
		return f.set(prefix, scalar(n), merged)
	}
	return fmt.Errorf("%s: unexpected YAML", orTop(prefix))
}

// merge flattens the value of a "<<" key: a mapping, or a list of them.
func (f *flattener) merge(prefix string, v *yaml.Node, depth int) error {
	for v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, m := range v.Content {
			if err := f.flatten(prefix, m, true, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return f.flatten(prefix, v, true, depth)
}

func (f *flattener) set(name, value string, merged bool) error {
	if f.n++; f.n > maxSettings {
		return fmt.Errorf("more than %d settings", maxSettings)
	}
	if merged {
		f.merged[name] = value
		return nil
	}
	if _, dup := f.values[name]; dup {
		return fmt.Errorf("%s is set twice", name)
	}
	f.values[name] = value
	return nil
}

// scalar is a value as written; null is empty.
func scalar(n *yaml.Node) string {
	if n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

func orTop(prefix string) string {
	if prefix == "" {
		return "the top level"
	}
	return prefix
}

// Print writes the effective value of every flag of fs as nested YAML, the
// same shape the config file takes. Values of flags for which secret
// returns true are replaced by a mask. Flags named in skip (commands, not
// settings) are left out.
func Print(w io.Writer, fs *flag.FlagSet, secret func(name, value string) string, skip ...string) error {
	root := &yaml.Node{Kind: yaml.MappingNode}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == FileFlag || slices.Contains(skip, f.Name) {
			return
		}
		value := f.Value.String()
		if secret != nil {
			value = secret(f.Name, value)
		}
		insert(root, strings.Split(f.Name, "."), value)
	})
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return err
	}
	return enc.Close()
}

func insert(m *yaml.Node, path []string, value string) {
	for i := 0; i < len(m.Content); i += 2 {
		if m.Content[i].Value == path[0] && len(path) > 1 && m.Content[i+1].Kind == yaml.MappingNode {
			insert(m.Content[i+1], path[1:], value)
			return
		}
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Value: path[0]}
	if len(path) == 1 {
		val := &yaml.Node{Kind: yaml.ScalarNode, Value: value}
		switch value {
		case "", "~", "null", "Null", "NULL": // would read back as null
			val.Style = yaml.DoubleQuotedStyle
		}
		m.Content = append(m.Content, key, val)
		return
	}
	child := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, key, child)
	insert(child, path[1:], value)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
