package validate

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	ktypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	kubeDir = "deployments/kubernetes"
	// secretExample shows the Secret the Deployments read; it is no resource
	// of the kustomization, so applying the base never overwrites real
	// credentials, and its placeholders stand in for them here.
	secretExample = "secret.example.yaml"
	// tlsComponent is the kustomize Component that turns on mutual TLS
	// between the processes (kubernetes_tls_test.go).
	tlsComponent = "tls"
	// monitoringComponent is the kustomize Component with the Prometheus
	// Operator's ServiceMonitor (kubernetes_network_test.go).
	monitoringComponent = "monitoring"
)

// cluster is what `kubectl apply -k deployments/kubernetes` would create,
// each object decoded into its API type, plus the example Secret.
type cluster struct {
	namespace   string
	namespaces  []*corev1.Namespace
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	pdbs        []*policyv1.PodDisruptionBudget
	netpols     []*networkingv1.NetworkPolicy
	monitors    []*monitoringv1.ServiceMonitor
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
}

// decodeStrict decodes a manifest into obj; a field the type does not have
// (a typo, a wrong indentation) is an error, as kubectl's server-side field
// validation would make it.
func decodeStrict(data []byte, obj any) error {
	return yaml.UnmarshalStrict(data, obj)
}

// renderKubernetes renders the kustomization with kustomize's own library and
// decodes every object strictly into its k8s.io/api type.
func renderKubernetes(t *testing.T) *cluster {
	t.Helper()
	return renderKustomization(t, filepath.Join(repoRoot, kubeDir), nil)
}

// renderKustomization renders the kustomization in dir; given holds Secrets
// the cluster would have that the manifests do not create.
func renderKustomization(t *testing.T, dir string, given []*corev1.Secret) *cluster {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	c := &cluster{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, r := range resources.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		id := r.GetApiVersion() + " " + r.GetKind() + " " + r.GetName()
		var obj metav1.Object
		switch r.GetApiVersion() + "/" + r.GetKind() {
		case "v1/Namespace":
			o := &corev1.Namespace{}
			c.namespaces, obj = append(c.namespaces, o), o
		case "v1/Service":
			o := &corev1.Service{}
			c.services, obj = append(c.services, o), o
		case "v1/ConfigMap":
			o := &corev1.ConfigMap{}
			c.configMaps[r.GetName()], obj = o, o
		case "v1/Secret":
			o := &corev1.Secret{}
			c.secrets[r.GetName()], obj = o, o
		case "apps/v1/Deployment":
			o := &appsv1.Deployment{}
			c.deployments, obj = append(c.deployments, o), o
		case "autoscaling/v2/HorizontalPodAutoscaler":
			o := &autoscalingv2.HorizontalPodAutoscaler{}
			c.hpas, obj = append(c.hpas, o), o
		case "policy/v1/PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			c.pdbs, obj = append(c.pdbs, o), o
		case "networking.k8s.io/v1/NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			c.netpols, obj = append(c.netpols, o), o
		case "monitoring.coreos.com/v1/ServiceMonitor":
			// A custom resource: the API server's schema does not know
			// it; the Prometheus Operator's own types decode it.
			o := &monitoringv1.ServiceMonitor{}
			c.monitors, obj = append(c.monitors, o), o
		default:
			t.Errorf("%s: a kind these tests do not know; teach renderKubernetes to decode and check it", id)
			continue
		}
		if err := decodeStrict(data, obj); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		if err := checkSchema(r); err != nil {
			t.Errorf("%s: the API's schema refuses it: %v", id, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(c.namespaces) != 1 {
		t.Fatalf("%d Namespace objects; want the one Shoal runs in", len(c.namespaces))
	}
	c.namespace = c.namespaces[0].Name

	for _, g := range given {
		c.secrets[g.Name] = g
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, kubeDir, secretExample))
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{}
	if err := decodeStrict(data, secret); err != nil {
		t.Fatalf("%s: %v", secretExample, err)
	}
	if secret.Namespace != c.namespace {
		t.Errorf("%s: namespace %q; want %q", secretExample, secret.Namespace, c.namespace)
	}
	if _, dup := c.secrets[secret.Name]; dup {
		t.Errorf("%s: the kustomization renders a Secret %s too; keep credentials out of the base", secretExample, secret.Name)
	}
	c.secrets[secret.Name] = secret
	return c
}

func TestKustomizationListsEveryFile(t *testing.T) {
	dir := filepath.Join(repoRoot, kubeDir)
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k ktypes.Kustomization
	if err := k.Unmarshal(data); err != nil { // strict: unknown fields are errors
		t.Fatalf("kustomization.yaml: %v", err)
	}
	listed := slices.Clone(k.Resources)
	var generators []ktypes.GeneratorArgs
	for _, g := range k.ConfigMapGenerator {
		generators = append(generators, g.GeneratorArgs)
	}
	for _, g := range k.SecretGenerator {
		generators = append(generators, g.GeneratorArgs)
	}
	for _, g := range generators {
		for _, src := range g.FileSources {
			_, file, found := strings.Cut(src, "=")
			if !found {
				file = src
			}
			listed = append(listed, file)
		}
		listed = append(listed, g.EnvSources...)
	}
	for _, p := range k.Patches {
		listed = append(listed, p.Path)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == "kustomization.yaml", name == "README.md", name == secretExample, name == tlsComponent, name == monitoringComponent:
		case !slices.Contains(listed, name):
			t.Errorf("%s/%s is not used by kustomization.yaml (resources, generators or patches); list it, or remove it", kubeDir, name)
		}
	}
}

// containerPort finds a port of a container, by name or number.
func containerPort(c *corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// kubeProcess is what the Deployment's one container runs: its arguments,
// its environment with Secret and ConfigMap references resolved (the
// Secret from the example), and the ConfigMap files it mounts.
func kubeProcess(t *testing.T, c *cluster, d *appsv1.Deployment) process {
	t.Helper()
	spec := d.Spec.Template.Spec
	p := process{where: "Deployment " + d.Name, env: map[string]string{}, files: map[string][]byte{}}
	if len(spec.Containers) != 1 || len(spec.InitContainers) > 0 {
		t.Errorf("%s: %d containers and %d init containers; want the one shoal container", p.where, len(spec.Containers), len(spec.InitContainers))
		return p
	}
	ctr := spec.Containers[0]
	if len(ctr.Command) > 0 {
		t.Errorf("%s: command %q; want the image's entrypoint (/shoal)", p.where, ctr.Command)
	}
	p.args = ctr.Args
	if slices.ContainsFunc(p.args, func(a string) bool { return strings.Contains(a, "$(") }) {
		t.Errorf("%s: arguments %q expand variables, which these tests do not", p.where, p.args)
	}
	if len(ctr.EnvFrom) > 0 {
		t.Errorf("%s: envFrom is not checked by these tests; name each variable in env", p.where)
	}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			p.env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := c.secrets[ref.Name]
			if !ok {
				t.Errorf("%s: env %s reads Secret %s, which is neither rendered nor %s", p.where, e.Name, ref.Name, secretExample)
				continue
			}
			v, ok := s.StringData[ref.Key]
			if !ok {
				var b []byte
				b, ok = s.Data[ref.Key]
				v = string(b)
			}
			switch {
			case ok:
				p.env[e.Name] = v
			case ref.Optional == nil || !*ref.Optional:
				t.Errorf("%s: env %s reads key %s of Secret %s, which has no such key", p.where, e.Name, ref.Key, ref.Name)
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := "", false
			if cm, found := c.configMaps[ref.Name]; found {
				v, ok = cm.Data[ref.Key]
			}
			if ok {
				p.env[e.Name] = v
			} else if ref.Optional == nil || !*ref.Optional {
				t.Errorf("%s: env %s reads key %s of ConfigMap %s, which is not rendered", p.where, e.Name, ref.Key, ref.Name)
			}
		case strings.HasPrefix(e.Name, "SHOAL_"):
			t.Errorf("%s: env %s comes from a field or resource reference, which these tests cannot resolve", p.where, e.Name)
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range ctr.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("%s: volume mount %s names no volume of the pod", p.where, m.Name)
			continue
		}
		// The files of a ConfigMap or Secret volume: key -> content.
		var data map[string][]byte
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			cm, ok := c.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Errorf("%s: volume %s mounts ConfigMap %s, which the kustomization does not render", p.where, v.Name, v.ConfigMap.Name)
				continue
			}
			data, items = map[string][]byte{}, v.ConfigMap.Items
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
		case v.Secret != nil:
			s, ok := c.secrets[v.Secret.SecretName]
			if !ok {
				t.Errorf("%s: volume %s mounts Secret %s, which is neither rendered nor given", p.where, v.Name, v.Secret.SecretName)
				continue
			}
			data, items = maps.Clone(s.Data), v.Secret.Items
			if data == nil {
				data = map[string][]byte{}
			}
			for k, v := range s.StringData {
				data[k] = []byte(v)
			}
		default:
			continue
		}
		files := map[string]string{} // key -> path in the volume
		for k := range data {
			files[k] = k
		}
		if len(items) > 0 {
			files = map[string]string{}
			for _, it := range items {
				files[it.Key] = it.Path
			}
		}
		for key, rel := range files {
			switch {
			case m.SubPath == "":
				p.files[path.Join(m.MountPath, rel)] = data[key]
			case m.SubPath == rel:
				p.files[m.MountPath] = data[key]
			}
		}
	}
	return p
}

func TestKubernetes(t *testing.T) {
	checkCluster(t, renderKubernetes(t))
}

// checkCluster checks what holds for every rendering of the manifests, and
// returns what it learnt of each process, by module.
func checkCluster(t *testing.T, c *cluster) map[string]ran {
	t.Helper()
	for _, o := range c.objects() {
		if _, ns := o.(*corev1.Namespace); !ns && o.GetNamespace() != c.namespace {
			t.Errorf("%T %s: namespace %q; want %q", o, o.GetName(), o.GetNamespace(), c.namespace)
		}
		if errs := validation.IsDNS1123Subdomain(o.GetName()); len(errs) > 0 {
			t.Errorf("%T %s: name: %s", o, o.GetName(), strings.Join(errs, "; "))
		}
	}
	for _, s := range c.services {
		if errs := validation.IsDNS1035Label(s.Name); len(errs) > 0 {
			t.Errorf("Service %s: name: %s", s.Name, strings.Join(errs, "; "))
		}
	}

	var procs []process
	byDeployment := map[string]*appsv1.Deployment{}
	image := ""
	for _, d := range c.deployments {
		byDeployment[d.Name] = d
		p := kubeProcess(t, c, d)
		procs = append(procs, p)
		if ctrs := d.Spec.Template.Spec.Containers; len(ctrs) == 1 {
			if image == "" {
				image = ctrs[0].Image
			}
			if ctrs[0].Image != image {
				t.Errorf("Deployment %s: image %q; want every Deployment to run the one image, %q", d.Name, ctrs[0].Image, image)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// A peer is reached through its Service's cluster DNS name
	// (<service>.<namespace>.svc), at a Service port that leads to the
	// peer's gRPC container port.
	resolve := func(addr string) (string, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", err
		}
		parts := strings.Split(host, ".")
		if !(len(parts) == 3 || (len(parts) == 5 && parts[3] == "cluster" && parts[4] == "local")) || parts[2] != "svc" {
			return "", fmt.Errorf("host %s; want a Service's DNS name, <service>.%s.svc", host, c.namespace)
		}
		if parts[1] != c.namespace {
			return "", fmt.Errorf("host %s is in namespace %s; the Services are in %s", host, parts[1], c.namespace)
		}
		svc := c.service(parts[0])
		if svc == nil {
			return "", fmt.Errorf("no Service %s", parts[0])
		}
		deps := c.selected(svc.Spec.Selector)
		if len(deps) != 1 {
			return "", fmt.Errorf("Service %s selects the pods of %d Deployments; want 1", svc.Name, len(deps))
		}
		// A ClusterIP is one address: the client's round robin would hold
		// one HTTP/2 connection to one pod behind it.
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			return "", fmt.Errorf("Service %s: clusterIP %q; want None (headless), so that its name resolves to every pod and each gets calls", svc.Name, svc.Spec.ClusterIP)
		}
		ctr := &deps[0].Spec.Template.Spec.Containers[0]
		for _, sp := range svc.Spec.Ports {
			if strconv.Itoa(int(sp.Port)) != port {
				continue
			}
			cp, ok := containerPort(ctr, sp.TargetPort)
			if !ok || cp.Name != "grpc" {
				return "", fmt.Errorf("Service %s port %s leads to container port %s, not the grpc port", svc.Name, port, sp.TargetPort.String())
			}
			m, _ := flagArg(ctr.Args, "target")
			return m, nil
		}
		return "", fmt.Errorf("Service %s has no port %s", svc.Name, port)
	}
	ran := checkProcesses(t, procs, resolve)

	for _, m := range slices.Sorted(maps.Keys(ran)) {
		r := ran[m]
		d := byDeployment[strings.TrimPrefix(r.where, "Deployment ")]
		t.Run(d.Name, func(t *testing.T) { checkDeployment(t, c, d, r) })
	}
	for _, s := range c.services {
		t.Run("Service "+s.Name, func(t *testing.T) { checkService(t, c, s) })
	}
	// Every process is reachable: peers call it, or users do (the gateway).
	for _, d := range c.deployments {
		if !slices.ContainsFunc(c.services, func(s *corev1.Service) bool {
			return slices.Contains(c.selected(s.Spec.Selector), d)
		}) {
			t.Errorf("Deployment %s: no Service selects its pods", d.Name)
		}
	}
	checkScaling(t, c, ran)
	t.Run("NetworkPolicies", func(t *testing.T) { checkNetworkPolicies(t, c, ran) })
	return ran
}

func (c *cluster) objects() []metav1.Object {
	var out []metav1.Object
	for _, o := range c.namespaces {
		out = append(out, o)
	}
	for _, o := range c.deployments {
		out = append(out, o)
	}
	for _, o := range c.services {
		out = append(out, o)
	}
	for _, o := range c.hpas {
		out = append(out, o)
	}
	for _, o := range c.pdbs {
		out = append(out, o)
	}
	for _, o := range c.netpols {
		out = append(out, o)
	}
	for _, o := range c.monitors {
		out = append(out, o)
	}
	for _, name := range slices.Sorted(maps.Keys(c.configMaps)) {
		out = append(out, c.configMaps[name])
	}
	return out
}

func (c *cluster) service(name string) *corev1.Service {
	for _, s := range c.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// selected returns the Deployments whose pods the selector matches.
func (c *cluster) selected(selector map[string]string) []*appsv1.Deployment {
	if len(selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(selector)
	var out []*appsv1.Deployment
	for _, d := range c.deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}
