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
	var root map[string]any
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	values := map[string]string{}
	if err := flatten("", root, values); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
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

// flatten turns nested maps into flag names joined by '.'; lists become
// comma-separated values, as list flags take them.
func flatten(prefix string, v any, out map[string]string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			if err := flatten(name, child, out); err != nil {
				return err
			}
		}
	case []any:
		parts := make([]string, len(v))
		for i, item := range v {
			switch item.(type) {
			case map[string]any, []any:
				return fmt.Errorf("%s: lists may hold only plain values", prefix)
			}
			parts[i] = fmt.Sprint(item)
		}
		out[prefix] = strings.Join(parts, ",")
	case nil:
		out[prefix] = ""
	default:
		if prefix == "" {
			return errors.New("the file must be a mapping of settings")
		}
		out[prefix] = fmt.Sprint(v)
	}
	return nil
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
		if value == "" {
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
