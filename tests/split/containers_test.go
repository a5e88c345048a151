package split

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envImage names the image (e.g. localhost/shoal:dev, which
// scripts/images.sh builds from deployments/Dockerfile) whose containers
// run the Shoal services instead of processes built from this tree; podman
// runs them (make test-deploy).
const envImage = "SHOAL_TEST_SPLIT_IMAGE"

// podman runs podman with the project's settings for hosts without a
// Docker engine (deployments/podman/containers.conf) unless
// CONTAINERS_CONF names others.
func podman(args ...string) *exec.Cmd {
	cmd := exec.Command("podman", args...)
	cmd.Env = podmanEnv()
	return cmd
}

func podmanEnv() []string {
	env := os.Environ()
	if os.Getenv("CONTAINERS_CONF") == "" {
		env = append(env, "CONTAINERS_CONF="+filepath.Join(repoRoot, "deployments", "podman", "containers.conf"))
	}
	return env
}

// containerize makes p a container of the image, created as Compose would
// create the service's container from the compose file: its command and
// environment, its config files mounted where it names them, its read-only
// root, tmpfs, volumes, dropped capabilities, security options, stop grace
// period and healthcheck. What differs is what one host without a bridge
// network needs (the override a user would write for it): the host's
// network, so each replica listens on ports of its own and the
// --clients.*-address flags name those (args has them), as does the
// healthcheck's -addr; the healthcheck runs when the test asks (podman
// healthcheck run) rather than on a timer, which needs systemd; and no
// restart policy, so a process that dies fails the test instead of
// coming back unnoticed.
func (top *topology) containerize(name string, p *proc, image string, args, env []string) error {
	s := top.compose.Services[name]
	p.container = top.containerPrefix() + "-" + p.name
	run := []string{"run", "--name", p.container, "--label", "io.shoal.test=split",
		"--pull", "never", "--network", "host"}
	mounts, err := top.compose.configMounts(name)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		run = append(run, "--volume", m.source+":"+m.target+":ro")
	}
	if s.ReadOnly {
		// Docker's read_only adds no tmpfs of its own; podman's does
		// unless told not to.
		run = append(run, "--read-only", "--read-only-tmpfs=false")
	}
	for _, t := range s.Tmpfs {
		run = append(run, "--tmpfs", t)
	}
	for _, v := range s.Volumes {
		vol, target, ok := strings.Cut(v, ":")
		if !ok || strings.HasPrefix(vol, ".") || strings.HasPrefix(vol, "/") {
			return fmt.Errorf("compose: %s: volume %q is not a named volume", name, v)
		}
		// Named volumes belong to the project, shared by its replicas,
		// as Compose names them.
		run = append(run, "--volume", top.containerPrefix()+"-"+vol+":"+target)
	}
	for _, c := range s.CapDrop {
		run = append(run, "--cap-drop", c)
	}
	for _, o := range s.SecurityOpt {
		run = append(run, "--security-opt", o)
	}
	if s.StopGracePeriod != "" {
		d, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil {
			return fmt.Errorf("compose: %s: stop_grace_period: %w", name, err)
		}
		run = append(run, "--stop-timeout", strconv.Itoa(int(d.Seconds())))
	}
	if test := s.Healthcheck.Test; len(test) > 0 {
		test = slices.Clone(test)
		for i, a := range test {
			if strings.HasPrefix(a, "-addr=") {
				test[i] = "-addr=" + p.grpcAddr
			}
		}
		// podman 4 takes the exec form as a JSON array without
		// compose's leading "CMD" (with it, the whole text is one word).
		if test[0] != "CMD" {
			return fmt.Errorf("compose: %s: healthcheck %q: want the exec form, [\"CMD\", ...] (the image has no shell)", name, test)
		}
		cmd, err := json.Marshal(test[1:])
		if err != nil {
			return err
		}
		run = append(run, "--health-cmd", string(cmd), "--health-interval", "disable")
		p.healthcheck = true
	}
	env = slices.Clone(env)
	slices.Sort(env)
	for _, kv := range env {
		run = append(run, "--env", kv)
	}
	p.argv = append(append([]string{"podman"}, run...), append([]string{image}, args...)...)
	p.env = podmanEnv()
	return nil
}

// containerPrefix names this run's containers and volumes, apart from any
// other run's.
func (top *topology) containerPrefix() string { return filepath.Base(workRoot) }

// removeVolumes removes the named volumes of this run's containers, once
// the containers are gone.
func (top *topology) removeVolumes() {
	for name, s := range top.compose.Services {
		if !slices.Contains(top.order, name) {
			continue
		}
		for _, v := range s.Volumes {
			vol, _, _ := strings.Cut(v, ":")
			vol = top.containerPrefix() + "-" + vol
			if podman("volume", "exists", vol).Run() != nil {
				continue
			}
			if out, err := podman("volume", "rm", "--force", vol).CombinedOutput(); err != nil {
				top.t.Errorf("podman volume rm %s: %v\n%s", vol, err, out)
			}
		}
	}
}

// healthy runs the service's compose healthcheck in its container, as
// Compose does before it starts the services that depend on it. Processes
// have none.
func (p *proc) healthy(ctx context.Context) error {
	if !p.healthcheck {
		return nil
	}
	cmd := exec.CommandContext(ctx, "podman", "healthcheck", "run", p.container)
	cmd.Env = podmanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: podman healthcheck run (the compose file's healthcheck) = %v; want healthy\n%s", p.name, err, out)
	}
	return nil
}
