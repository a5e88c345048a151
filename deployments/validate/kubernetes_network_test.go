package validate

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// peer is one end of a connection as NetworkPolicy sees it: a pod (its
// labels, its namespace's labels, its container for named ports) or, with
// no labels, an address outside the cluster.
type peer struct {
	what      string
	labels    labels.Set // nil: outside the cluster
	namespace labels.Set
	ctr       *corev1.Container
}

func (c *cluster) pod(d *appsv1.Deployment) peer {
	return peer{
		what:      "Deployment " + d.Name,
		labels:    labels.Set(d.Spec.Template.Labels),
		namespace: labels.Set{"kubernetes.io/metadata.name": c.namespace},
		ctr:       &d.Spec.Template.Spec.Containers[0],
	}
}

var (
	// outside is an address beyond the cluster: a user, a load balancer,
	// the database, S3.
	outside = peer{what: "an address outside the cluster"}
	// stranger is a pod of another namespace with no particular label.
	stranger = peer{what: "a pod of another namespace", labels: labels.Set{}, namespace: labels.Set{"kubernetes.io/metadata.name": "elsewhere"}}
	// prometheus is a pod of the Prometheus Operator's Prometheus.
	prometheus = peer{what: "Prometheus", labels: labels.Set{"app.kubernetes.io/name": "prometheus"}, namespace: labels.Set{"kubernetes.io/metadata.name": "monitoring"}}
)

// allowed says whether the policies let a connection from src to dst's
// port pass, as the NetworkPolicy API defines it: a pod that no policy of
// a direction selects is open in that direction; a selected one takes what
// any rule of the policies selecting it allows; both ends must allow.
func (c *cluster) allowed(src, dst peer, port int32, proto corev1.Protocol) bool {
	return c.allows(networkingv1.PolicyTypeEgress, src, dst, dst, port, proto) &&
		c.allows(networkingv1.PolicyTypeIngress, dst, src, dst, port, proto)
}

// allows: the policies of subject's namespace in direction dir let it talk
// with other (the destination's port is on dst).
func (c *cluster) allows(dir networkingv1.PolicyType, subject, other, dst peer, port int32, proto corev1.Protocol) bool {
	if subject.labels == nil {
		return true // outside the cluster: no policy of ours applies
	}
	if subject.namespace["kubernetes.io/metadata.name"] != c.namespace {
		return true // another namespace's policies are not ours to check
	}
	isolated := false
	for _, np := range c.netpols {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(subject.labels) || !hasPolicyType(np, dir) {
			continue
		}
		isolated = true
		if dir == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				if c.peersMatch(r.From, other) && portsMatch(r.Ports, dst, port, proto) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Egress {
				if c.peersMatch(r.To, other) && portsMatch(r.Ports, dst, port, proto) {
					return true
				}
			}
		}
	}
	return !isolated
}

func hasPolicyType(np *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return dir == networkingv1.PolicyTypeIngress || len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, dir)
}

// peersMatch: a rule's from (or to) list admits p. An ipBlock is taken to
// cover addresses outside the cluster, not pods.
func (c *cluster) peersMatch(peers []networkingv1.NetworkPolicyPeer, p peer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, np := range peers {
		switch {
		case np.IPBlock != nil:
			if p.labels == nil {
				return true
			}
		case p.labels == nil:
		case np.NamespaceSelector == nil:
			sel, err := metav1.LabelSelectorAsSelector(np.PodSelector)
			if err == nil && p.namespace["kubernetes.io/metadata.name"] == c.namespace && sel.Matches(p.labels) {
				return true
			}
		default:
			nsSel, err := metav1.LabelSelectorAsSelector(np.NamespaceSelector)
			if err != nil || !nsSel.Matches(p.namespace) {
				continue
			}
			if np.PodSelector == nil {
				return true
			}
			if sel, err := metav1.LabelSelectorAsSelector(np.PodSelector); err == nil && sel.Matches(p.labels) {
				return true
			}
		}
	}
	return false
}

// portsMatch: a rule's ports admit port on dst (a named port is dst's
// container port of that name).
func portsMatch(ports []networkingv1.NetworkPolicyPort, dst peer, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String:
			if dst.ctr == nil {
				continue
			}
			if cp, ok := containerPort(dst.ctr, *p.Port); ok && cp.ContainerPort == port {
				return true
			}
		case p.EndPort != nil:
			if port >= p.Port.IntVal && port <= *p.EndPort {
				return true
			}
		case p.Port.IntVal == port:
			return true
		}
	}
	return false
}

// storagePort is the TCP port a process reaches its database at (from the
// DSN), or S3 at (from blob.s3.endpoint).
func storagePort(t *testing.T, r ran, what string) int32 {
	t.Helper()
	var hostport, def string
	switch what {
	case "database":
		dsn := r.env["SHOAL_DB_DSN"]
		if dsn == "" {
			dsn = r.effective["db.dsn"]
		}
		switch driver := r.effective["db.driver"]; driver {
		case "postgres":
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatalf("%s: db.dsn: %v", r.where, err)
			}
			hostport, def = u.Host, "5432"
		case "mysql":
			_, rest, _ := strings.Cut(dsn, "@tcp(")
			hostport, _, _ = strings.Cut(rest, ")")
			def = "3306"
		default:
			t.Fatalf("%s: db.driver %q; want postgres or mysql", r.where, driver)
		}
	case "S3":
		hostport, def = r.effective["blob.s3.endpoint"], "443"
		if r.effective["blob.s3.insecure"] == "true" {
			def = "80"
		}
	}
	if _, p, err := net.SplitHostPort(hostport); err == nil {
		def = p
	}
	n, err := strconv.Atoi(def)
	if err != nil {
		t.Fatalf("%s: %s at %q: no port", r.where, what, hostport)
	}
	return int32(n)
}

// checkNetworkPolicies checks the policies against the call graph as the
// Deployments configure it (ran: each process's --clients.*-address
// arguments, and the storage it uses): every pod is isolated both ways;
// every call a process makes passes, and its DNS and storage traffic; users
// reach the gateway's two ports and nothing else; no pod reaches another
// that it does not call, nor any port beyond its peer's gRPC port.
func checkNetworkPolicies(t *testing.T, c *cluster, ran map[string]ran) {
	byModule := map[string]*appsv1.Deployment{}
	for m, r := range ran {
		for _, d := range c.deployments {
			if "Deployment "+d.Name == r.where {
				byModule[m] = d
			}
		}
	}
	grpcPort := func(d *appsv1.Deployment) int32 {
		cp, _ := containerPort(&d.Spec.Template.Spec.Containers[0], intstr.FromString("grpc"))
		return cp.ContainerPort
	}
	// Default deny: any pod of the namespace, also one added later, is
	// isolated both ways until a policy allows it something.
	if !slices.ContainsFunc(c.netpols, func(np *networkingv1.NetworkPolicy) bool {
		return len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
			hasPolicyType(np, networkingv1.PolicyTypeIngress) && hasPolicyType(np, networkingv1.PolicyTypeEgress) &&
			len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0
	}) {
		t.Error("no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules)")
	}
	for _, d := range c.deployments {
		p := c.pod(d)
		for _, dir := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
			if !slices.ContainsFunc(c.netpols, func(np *networkingv1.NetworkPolicy) bool {
				sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
				return err == nil && sel.Matches(p.labels) && hasPolicyType(np, dir)
			}) {
				t.Errorf("%s: no NetworkPolicy isolates its %s; want default deny", p.what, strings.ToLower(string(dir)))
			}
		}
	}

	// What the processes need passes.
	for _, m := range slices.Sorted(maps.Keys(ran)) {
		r, d := ran[m], byModule[m]
		src := c.pod(d)
		for _, callee := range r.calls {
			dst := c.pod(byModule[callee])
			if port := grpcPort(byModule[callee]); !c.allowed(src, dst, port, corev1.ProtocolTCP) {
				t.Errorf("%s calls %s (--clients.%s-address) but the NetworkPolicies block %s -> %s port %d", m, callee, callee, src.what, dst.what, port)
			}
		}
		for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
			if !c.allowed(src, outside, 53, proto) {
				t.Errorf("%s: the NetworkPolicies block DNS (%s 53)", src.what, proto)
			}
		}
		for what, needed := range map[string]bool{"database": r.needsDB, "S3": r.needsBlob} {
			if !needed {
				continue
			}
			if port := storagePort(t, r, what); !c.allowed(src, outside, port, corev1.ProtocolTCP) {
				t.Errorf("%s uses the %s, at port %d by its configuration, but the NetworkPolicies block it", src.what, what, port)
			}
		}
	}
	gateway, ok := byModule["gateway"]
	if !ok {
		t.Fatal("no Deployment runs the gateway")
	}
	for _, name := range []string{"grpc", "http"} {
		cp, _ := containerPort(&gateway.Spec.Template.Spec.Containers[0], intstr.FromString(name))
		for _, from := range []peer{outside, stranger} {
			if !c.allowed(from, c.pod(gateway), cp.ContainerPort, corev1.ProtocolTCP) {
				t.Errorf("the NetworkPolicies block %s -> the gateway's %s port %d; want users to reach it", from.what, name, cp.ContainerPort)
			}
		}
	}

	// Nothing else does.
	for _, d := range c.deployments {
		dst := c.pod(d)
		for _, cp := range dst.ctr.Ports {
			for _, from := range []peer{outside, stranger} {
				if d != gateway && c.allowed(from, dst, cp.ContainerPort, corev1.ProtocolTCP) {
					t.Errorf("%s reaches %s port %d (%s); only the gateway takes connections from outside", from.what, dst.what, cp.ContainerPort, cp.Name)
				}
			}
			for m, r := range ran {
				src := c.pod(byModule[m])
				if byModule[m] == d || !c.allowed(src, dst, cp.ContainerPort, corev1.ProtocolTCP) {
					continue
				}
				if callee := moduleOf(byModule, d); !slices.Contains(r.calls, callee) || cp.Name != "grpc" {
					t.Errorf("%s reaches %s port %d (%s), but %s does not call it there", src.what, dst.what, cp.ContainerPort, cp.Name, m)
				}
			}
		}
	}
	// Egress beyond the cluster: only DNS and the storage each uses.
	for m, r := range ran {
		src := c.pod(byModule[m])
		want := []int32{53}
		if r.needsDB {
			want = append(want, storagePort(t, r, "database"))
		}
		if r.needsBlob {
			want = append(want, storagePort(t, r, "S3"))
		}
		for _, port := range []int32{22, 53, 80, 443, 3306, 5432, 8080, 9000, 9090} {
			if !slices.Contains(want, port) && c.allowed(src, outside, port, corev1.ProtocolTCP) {
				t.Errorf("%s reaches port %d outside the cluster; want only DNS and its storage (%v)", src.what, port, want)
			}
		}
	}
}

// moduleOf is the module a Deployment runs.
func moduleOf(byModule map[string]*appsv1.Deployment, d *appsv1.Deployment) string {
	for m, x := range byModule {
		if x == d {
			return m
		}
	}
	return ""
}

// The monitoring component on the base, as an overlay would apply it: the
// base still passes every check, a ServiceMonitor decoded with the
// Prometheus Operator's types selects a Service of every process at a port
// leading to its /metrics listener, and Prometheus's pods may scrape it.
func TestKubernetesMonitoring(t *testing.T) {
	base := filepath.Join(repoRoot, kubeDir)
	overlay := t.TempDir()
	rel, err := filepath.Rel(overlay, base)
	if err != nil {
		t.Fatal(err)
	}
	kustomization := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources: [" + rel + "]\ncomponents: [" + filepath.Join(rel, monitoringComponent) + "]\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		t.Fatal(err)
	}
	c := renderKustomization(t, overlay, nil)
	ran := checkCluster(t, c)
	if len(c.monitors) == 0 {
		t.Fatal("the monitoring component renders no ServiceMonitor")
	}
	if base := renderKubernetes(t); len(base.monitors) > 0 {
		t.Error("the base renders a ServiceMonitor; keep it in the component, so the base applies without the CRD")
	}
	for m, r := range ran {
		var d *appsv1.Deployment
		for _, x := range c.deployments {
			if "Deployment "+x.Name == r.where {
				d = x
			}
		}
		metrics := r.effective.port(t, "http.listen-address") // /metrics is served on the HTTP listener
		scraped := ""
		for _, sm := range c.monitors {
			for _, why := range scrapes(c, sm, d, metrics) {
				scraped = why
			}
		}
		if scraped == "" {
			t.Errorf("%s: no ServiceMonitor endpoint scrapes /metrics on port %d of Deployment %s", m, metrics, d.Name)
			continue
		}
		t.Logf("%s: %s", m, scraped)
		if !c.allowed(prometheus, c.pod(d), int32(metrics), corev1.ProtocolTCP) {
			t.Errorf("%s: the NetworkPolicies block Prometheus -> Deployment %s port %d (/metrics)", m, d.Name, metrics)
		}
	}
}

// scrapes lists the endpoints of sm that scrape /metrics of d's pods on
// port metrics, through a Service in sm's namespace selection.
func scrapes(c *cluster, sm *monitoringv1.ServiceMonitor, d *appsv1.Deployment, metrics int) []string {
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil
	}
	ns := sm.Spec.NamespaceSelector
	if !ns.Any && !(len(ns.MatchNames) == 0 && sm.Namespace == c.namespace) && !slices.Contains(ns.MatchNames, c.namespace) {
		return nil
	}
	var out []string
	for _, s := range c.services {
		if !sel.Matches(labels.Set(s.Labels)) || !slices.Contains(c.selected(s.Spec.Selector), d) {
			continue
		}
		for _, ep := range sm.Spec.Endpoints {
			path := ep.Path
			if path == "" {
				path = "/metrics"
			}
			if path != "/metrics" || (ep.Scheme != nil && strings.ToLower(string(*ep.Scheme)) != "http") {
				continue
			}
			for _, sp := range s.Spec.Ports {
				if sp.Name != ep.Port {
					continue
				}
				if cp, ok := containerPort(&d.Spec.Template.Spec.Containers[0], sp.TargetPort); ok && int(cp.ContainerPort) == metrics {
					out = append(out, fmt.Sprintf("ServiceMonitor %s, Service %s port %s", sm.Name, s.Name, sp.Name))
				}
			}
		}
	}
	return out
}
