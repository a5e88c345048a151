package split

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// composeFile is what the test reads of deployments/compose/compose.yaml
// (and of an override file given after it, as compose.original.yaml is):
// each service's command, environment, replicas, config files and start
// order. The YAML anchors and merge keys the files use (x-shoal,
// <<: [*db-env, ...]) are resolved by the YAML decoder, as Compose
// resolves them; later files are merged over earlier ones as Compose
// merges them (merge).
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
	DependsOn dependsOn `yaml:"depends_on"`
	// Profiles: a service of a profile starts only when it is asked for,
	// which the test never does.
	Profiles []string `yaml:"profiles"`

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

// dependsOn is a service's depends_on; in an override file, tagged
// !override when it replaces the earlier file's rather than adding to it.
type dependsOn struct {
	services map[string]any
	override bool
}

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	d.override = n.Tag == "!override"
	return n.Decode(&d.services)
}

// readCompose reads the compose files, each merged over the ones before.
func readCompose(paths ...string) (*composeFile, error) {
	var c *composeFile
	for _, p := range paths {
		next, err := readComposeFile(p)
		if err != nil {
			return nil, err
		}
		if c == nil {
			c = next
			continue
		}
		if err := c.merge(next); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	for name, s := range c.Services {
		if len(s.Profiles) > 0 {
			delete(c.Services, name)
		}
	}
	return c, nil
}

// merge adds an override file's services and settings to c as Compose
// merges them, for the fields an override may set here: a new service is
// added; for an existing one, environment and depends_on entries are added
// or replaced one by one (depends_on all at once when tagged !override),
// profiles and a command replace the earlier file's. Anything else an
// override file sets is refused, so the test never runs a service other
// than Compose would.
func (c *composeFile) merge(o *composeFile) error {
	for name, ov := range o.Services {
		s, ok := c.Services[name]
		if !ok {
			c.Services[name] = ov
			continue
		}
		if ov.Image != "" || ov.Deploy.Replicas != 0 || len(ov.Configs) > 0 || len(ov.Volumes) > 0 || len(ov.Tmpfs) > 0 {
			return fmt.Errorf("service %s: the test merges only environment, depends_on, profiles and command of an existing service", name)
		}
		if len(ov.Command) > 0 {
			s.Command = ov.Command
		}
		if len(ov.Profiles) > 0 {
			s.Profiles = ov.Profiles
		}
		env := maps.Clone(s.Environment)
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, ov.Environment)
		s.Environment = env
		if ov.DependsOn.override {
			s.DependsOn = ov.DependsOn
		} else if len(ov.DependsOn.services) > 0 {
			deps := maps.Clone(s.DependsOn.services)
			if deps == nil {
				deps = map[string]any{}
			}
			maps.Copy(deps, ov.DependsOn.services)
			s.DependsOn.services = deps
		}
		c.Services[name] = s
	}
	if c.Configs == nil {
		c.Configs = o.Configs
		return nil
	}
	for name, cf := range o.Configs {
		c.Configs[name] = cf
	}
	return nil
}

// readComposeFile reads one compose file, with its ${VAR:-default}
// references replaced by their defaults (the test sets none of those
// variables).
func readComposeFile(path string) (*composeFile, error) {
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
		deps := make([]string, 0, len(c.Services[name].DependsOn.services))
		for d := range c.Services[name].DependsOn.services {
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
