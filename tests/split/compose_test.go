package split

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// composeFile is what the test reads of deployments/compose/compose.yaml:
// each service's command, environment, replicas, config files and start
// order. The YAML anchors and merge keys the file uses (x-shoal,
// <<: [*db-env, ...]) are resolved by the YAML decoder, as Compose
// resolves them.
type composeFile struct {
	dir      string
	Services map[string]composeService `yaml:"services"`
	Configs  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"configs"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Configs     []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"configs"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	DependsOn map[string]any `yaml:"depends_on"`

	// What a container runtime reads besides (containers_test.go).
	ReadOnly        bool     `yaml:"read_only"`
	Tmpfs           []string `yaml:"tmpfs"`
	Volumes         []string `yaml:"volumes"`
	CapDrop         []string `yaml:"cap_drop"`
	SecurityOpt     []string `yaml:"security_opt"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	Healthcheck     struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// readCompose reads the compose file, with its ${VAR:-default} references
// replaced by their defaults (the test sets none of those variables).
func readCompose(path string) (*composeFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var bad error
	text := interpolation.ReplaceAllStringFunc(string(b), func(ref string) string {
		m := interpolation.FindStringSubmatch(ref)
		if m[2] == "" {
			bad = fmt.Errorf("%s: %s has no default", path, ref)
		}
		return strings.TrimPrefix(m[2], ":-")
	})
	if bad != nil {
		return nil, bad
	}
	var c composeFile
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.dir = filepath.Dir(path)
	return &c, nil
}

var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:-[^}]*)?\}`)

// shoalServices are the services that run Shoal's image, in an order
// where each comes after those it depends on (as Compose starts them).
func (c *composeFile) shoalServices() ([]string, error) {
	var order []string
	state := map[string]int{} // 1: visiting, 2: done
	var visit func(string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("compose: depends_on cycle through %s", name)
		case 2:
			return nil
		}
		state[name] = 1
		deps := make([]string, 0, len(c.Services[name].DependsOn))
		for d := range c.Services[name].DependsOn {
			deps = append(deps, d)
		}
		slices.Sort(deps)
		for _, d := range deps {
			if _, ok := c.Services[d]; !ok {
				return fmt.Errorf("compose: %s depends on %s, which is not a service", name, d)
			}
			if err := visit(d); err != nil {
				return err
			}
		}
		state[name] = 2
		if c.Services[name].Image == c.Services["gateway"].Image {
			order = append(order, name)
		}
		return nil
	}
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// replicas is how many copies of a service Compose runs.
func (s composeService) replicas() int { return max(1, s.Deploy.Replicas) }

// args are the service's command as it runs outside a container: the
// config files it mounts are read from beside the compose file.
func (c *composeFile) args(name string) ([]string, error) {
	args := slices.Clone(c.Services[name].Command)
	mounts, err := c.configMounts(name)
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, m.target, m.source)
		}
	}
	return args, nil
}

// mount is a file of the host seen at target inside a container.
type mount struct{ source, target string }

// configMounts are the config files the service mounts, with their paths
// beside the compose file.
func (c *composeFile) configMounts(name string) ([]mount, error) {
	var out []mount
	for _, cf := range c.Services[name].Configs {
		src, ok := c.Configs[cf.Source]
		if !ok {
			return nil, fmt.Errorf("compose: %s mounts config %q, which is not defined", name, cf.Source)
		}
		out = append(out, mount{filepath.Join(c.dir, src.File), cf.Target})
	}
	return out, nil
}
