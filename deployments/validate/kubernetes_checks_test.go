package validate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// checkDeployment checks one Shoal Deployment against what its process
// needs (r: its effective configuration) and the restricted Pod Security
// Standard.
func checkDeployment(t *testing.T, c *cluster, d *appsv1.Deployment, r ran) {
	eff := r.effective
	spec := d.Spec.Template.Spec
	ctr := &spec.Containers[0]

	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the pod template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}

	// Ports: named grpc and http, where the process listens.
	ports := map[string]int{"grpc": eff.port(t, "grpc.listen-address"), "http": eff.port(t, "http.listen-address")}
	for name, want := range ports {
		cp, ok := containerPort(ctr, intstr.FromString(name))
		if !ok || int(cp.ContainerPort) != want || (cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP) {
			t.Errorf("container port %s = %+v; want TCP %d, where the process listens", name, cp, want)
		}
	}
	for _, cp := range ctr.Ports {
		if errs := validation.IsValidPortName(cp.Name); len(errs) > 0 {
			t.Errorf("container port name %q: %s", cp.Name, strings.Join(errs, "; "))
		}
	}

	// Probes: the process is started when its module's gRPC health is
	// SERVING; alive while /healthz answers; ready while /readyz does.
	probe := func(kind string, p *corev1.Probe, check func(*corev1.Probe) string) {
		if p == nil {
			t.Errorf("no %s probe", kind)
			return
		}
		handlers := 0
		for _, set := range []bool{p.HTTPGet != nil, p.GRPC != nil, p.TCPSocket != nil, p.Exec != nil} {
			if set {
				handlers++
			}
		}
		if handlers != 1 {
			t.Errorf("%s probe has %d handlers; want exactly 1", kind, handlers)
			return
		}
		if msg := check(p); msg != "" {
			t.Errorf("%s probe: %s", kind, msg)
		}
	}
	httpGet := func(path string) func(*corev1.Probe) string {
		return func(p *corev1.Probe) string {
			if p.HTTPGet == nil {
				return "want httpGet " + path
			}
			cp, ok := containerPort(ctr, p.HTTPGet.Port)
			if p.HTTPGet.Path != path || !ok || int(cp.ContainerPort) != ports["http"] {
				return fmt.Sprintf("httpGet %s on port %s; want %s on the http port (%d)", p.HTTPGet.Path, p.HTTPGet.Port.String(), path, ports["http"])
			}
			return ""
		}
	}
	probe("liveness", ctr.LivenessProbe, httpGet("/healthz"))
	probe("readiness", ctr.ReadinessProbe, httpGet("/readyz"))
	probe("startup", ctr.StartupProbe, func(p *corev1.Probe) string {
		if p.GRPC == nil {
			// The kubelet's gRPC probe speaks no TLS: over TLS, started
			// means ready.
			if p.HTTPGet != nil && p.HTTPGet.Path == "/readyz" {
				return httpGet("/readyz")(p)
			}
			return httpGet("/healthz")(p)
		}
		svc := ""
		if p.GRPC.Service != nil {
			svc = *p.GRPC.Service
		}
		if int(p.GRPC.Port) != ports["grpc"] || svc != healthService(r.module) {
			return fmt.Sprintf("grpc port %d service %q; want port %d service %q", p.GRPC.Port, svc, ports["grpc"], healthService(r.module))
		}
		return ""
	})

	// Resources: requests to schedule on, limits to be contained by.
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := ctr.Resources.Requests[res]
		lim, hasLim := ctr.Resources.Limits[res]
		switch {
		case !hasReq || !hasLim:
			t.Errorf("resources: %s request %v, limit %v; want both set", res, req.String(), lim.String())
		case req.Cmp(lim) > 0:
			t.Errorf("resources: %s request %s exceeds the limit %s", res, req.String(), lim.String())
		}
	}

	// Security: the restricted Pod Security Standard, and no API access.
	psc, csc := spec.SecurityContext, ctr.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	nonRoot := csc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	user := csc.RunAsUser
	if user == nil {
		user = psc.RunAsUser
	}
	seccomp := csc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	switch {
	case nonRoot == nil || !*nonRoot:
		t.Errorf("runAsNonRoot is not true")
	case user != nil && *user == 0:
		t.Errorf("runAsUser is 0")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation is not false")
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem is not true")
	}
	if csc.Privileged != nil && *csc.Privileged {
		t.Errorf("privileged")
	}
	if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
		t.Errorf("capabilities %+v; want drop ALL, add none", csc.Capabilities)
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v; want RuntimeDefault", seccomp)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken is not false; Shoal does not call the Kubernetes API")
	}

	// The root filesystem is read-only: /tmp (the trainer's scratch space)
	// is a bounded emptyDir.
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.EmptyDir != nil && v.EmptyDir.SizeLimit == nil {
			t.Errorf("emptyDir volume %s has no sizeLimit; it could fill the node's disk", v.Name)
		}
	}
	if !slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == "/tmp" && volumes[m.Name].EmptyDir != nil && !m.ReadOnly
	}) {
		t.Errorf("no writable emptyDir at /tmp; the root filesystem is read-only")
	}

	// SIGKILL comes terminationGracePeriodSeconds after SIGTERM: the
	// shutdown delay and the drain must fit.
	drain := eff.drainTime(t)
	if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %s; want more than server.shutdown-delay + server.shutdown-timeout = %s", deref(g), drain)
	}
	if eff.duration(t, "server.shutdown-delay") == 0 && (ctr.Lifecycle == nil || ctr.Lifecycle.PreStop == nil) {
		t.Errorf("server.shutdown-delay is 0 and there is no preStop hook: the pod stops serving before the endpoints drop it")
	}

	if r.module == "inference" && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2) {
		t.Errorf("replicas %s; want Inference to run at least 2", deref(d.Spec.Replicas))
	}
}

// deref prints an optional number.
func deref[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func checkService(t *testing.T, c *cluster, s *corev1.Service) {
	deps := c.selected(s.Spec.Selector)
	if len(deps) != 1 {
		t.Fatalf("selector %v matches the pods of %d Deployments; want 1", s.Spec.Selector, len(deps))
	}
	ctr := &deps[0].Spec.Template.Spec.Containers[0]
	for _, sp := range s.Spec.Ports {
		if _, ok := containerPort(ctr, sp.TargetPort); !ok {
			t.Errorf("port %s targets %s, which Deployment %s's container does not expose", sp.Name, sp.TargetPort.String(), deps[0].Name)
		}
	}
}

// checkScaling checks Inference's HorizontalPodAutoscaler and
// PodDisruptionBudget, and that every one of them refers to what exists.
func checkScaling(t *testing.T, c *cluster, ran map[string]ran) {
	// A Service of several replicas is headless, so that clients' round
	// robin reaches each (a ClusterIP holds one connection to one pod), and
	// its ports are the pods' own (a headless Service maps none).
	for _, s := range c.services {
		for _, d := range c.selected(s.Spec.Selector) {
			if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
				continue
			}
			if s.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("Service %s: clusterIP %q in front of %d replicas; want None (headless) so that every replica gets calls", s.Name, s.Spec.ClusterIP, *d.Spec.Replicas)
			}
			for _, sp := range s.Spec.Ports {
				if cp, ok := containerPort(&d.Spec.Template.Spec.Containers[0], sp.TargetPort); ok && cp.ContainerPort != sp.Port {
					t.Errorf("Service %s: port %d leads to %d; a headless Service does not map ports", s.Name, sp.Port, cp.ContainerPort)
				}
			}
		}
	}
	inference, ok := ran["inference"]
	if !ok {
		return
	}
	inferenceName := strings.TrimPrefix(inference.where, "Deployment ")
	scaled := false
	for _, h := range c.hpas {
		ref := h.Spec.ScaleTargetRef
		var d *appsv1.Deployment
		for _, x := range c.deployments {
			if ref.Kind == "Deployment" && ref.APIVersion == "apps/v1" && x.Name == ref.Name {
				d = x
			}
		}
		if d == nil {
			t.Errorf("HorizontalPodAutoscaler %s scales %s %s, which is no Deployment here", h.Name, ref.Kind, ref.Name)
			continue
		}
		scaled = scaled || d.Name == inferenceName
		min := int32(1)
		if h.Spec.MinReplicas != nil {
			min = *h.Spec.MinReplicas
		}
		if d.Name == inferenceName && min < 2 {
			t.Errorf("HorizontalPodAutoscaler %s: minReplicas %d; want at least 2", h.Name, min)
		}
		if h.Spec.MaxReplicas < min {
			t.Errorf("HorizontalPodAutoscaler %s: maxReplicas %d < minReplicas %d", h.Name, h.Spec.MaxReplicas, min)
		}
		for _, m := range h.Spec.Metrics {
			if m.Resource == nil || m.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
				continue
			}
			// Utilization is relative to the request.
			if _, ok := d.Spec.Template.Spec.Containers[0].Resources.Requests[m.Resource.Name]; !ok {
				t.Errorf("HorizontalPodAutoscaler %s scales on %s utilization, but Deployment %s requests no %s", h.Name, m.Resource.Name, d.Name, m.Resource.Name)
			}
		}
	}
	if !scaled {
		t.Errorf("no HorizontalPodAutoscaler scales Deployment %s", inferenceName)
	}
	guarded := false
	for _, p := range c.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("PodDisruptionBudget %s: selector %v (%v)", p.Name, p.Spec.Selector, err)
			continue
		}
		var matched []*appsv1.Deployment
		for _, d := range c.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = append(matched, d)
			}
		}
		if len(matched) != 1 {
			t.Errorf("PodDisruptionBudget %s selects the pods of %d Deployments; want 1", p.Name, len(matched))
			continue
		}
		d := matched[0]
		guarded = guarded || d.Name == inferenceName
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		// Evictions must stay possible (or node drains hang) while at
		// least one pod keeps serving.
		switch {
		case p.Spec.MinAvailable != nil && p.Spec.MaxUnavailable != nil:
			t.Errorf("PodDisruptionBudget %s sets both minAvailable and maxUnavailable", p.Name)
		case p.Spec.MaxUnavailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MaxUnavailable, int(replicas), true)
			if err != nil || v < 1 || v >= int(replicas) {
				t.Errorf("PodDisruptionBudget %s: maxUnavailable %s of %d replicas; want at least 1 and fewer than all", p.Name, p.Spec.MaxUnavailable.String(), replicas)
			}
		case p.Spec.MinAvailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, int(replicas), true)
			if err != nil || v < 1 || v >= int(replicas) {
				t.Errorf("PodDisruptionBudget %s: minAvailable %s of %d replicas; want at least 1 and fewer than all", p.Name, p.Spec.MinAvailable.String(), replicas)
			}
		default:
			t.Errorf("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", p.Name)
		}
	}
	if !guarded {
		t.Errorf("no PodDisruptionBudget guards Deployment %s", inferenceName)
	}
}
