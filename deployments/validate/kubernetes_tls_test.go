package validate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The TLS component on the base, as an overlay would apply it, with the
// Secret shoal-tls that certificate.example.yaml has cert-manager issue
// (made here from a CA of the test's own): every process serves gRPC over
// TLS asking for client certificates, calls its peers over TLS with its
// certificate, and starts with that configuration; the certificate names
// every address a process calls.
func TestKubernetesTLS(t *testing.T) {
	base := filepath.Join(repoRoot, kubeDir)
	overlay := t.TempDir()
	rel, err := filepath.Rel(overlay, base) // kustomize takes no absolute paths
	if err != nil {
		t.Fatal(err)
	}
	kustomization := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources: [" + rel + "]\ncomponents: [" + filepath.Join(rel, tlsComponent) + "]\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		t.Fatal(err)
	}

	names := certificateNames(t)
	c := renderKustomization(t, overlay, []*corev1.Secret{tlsSecret(t, names)})
	ran := checkCluster(t, c)

	want := map[string]string{
		"grpc.tls-cert-file":      "/etc/shoal/tls/tls.crt",
		"grpc.tls-key-file":       "/etc/shoal/tls/tls.key",
		"grpc.tls-client-ca-file": "/etc/shoal/tls/ca.crt",
		"clients.tls-ca-file":     "/etc/shoal/tls/ca.crt",
		"clients.tls-cert-file":   "/etc/shoal/tls/tls.crt",
		"clients.tls-key-file":    "/etc/shoal/tls/tls.key",
	}
	for _, d := range c.deployments {
		if p := d.Spec.Template.Spec.Containers[0].StartupProbe; p != nil && p.GRPC != nil {
			t.Errorf("Deployment %s: a gRPC startup probe, which the kubelet cannot make over TLS", d.Name)
		}
	}
	for m, r := range ran {
		for name, path := range want {
			// The variable names the mounted file; shoal took it (the
			// effective value is the test's copy of that file).
			env := "SHOAL_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(name))
			if got := r.env[env]; got != path || r.effective[name] == "" {
				t.Errorf("%s: %s=%q (effective %s %q); want %q", m, env, got, name, r.effective[name], path)
			}
		}
		for _, peer := range r.calls {
			addr, _ := flagArg(r.args, "clients."+peer+"-address")
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				t.Errorf("%s calls %s at %q: %v", m, peer, addr, err)
				continue
			}
			if !slices.Contains(names, host) {
				t.Errorf("%s calls %s, a name certificate.example.yaml's dnsNames lack: %v", m, host, names)
			}
		}
	}
}

// certificateNames reads the dnsNames of the Certificate shoal-tls in the
// component's certificate.example.yaml, and checks that it is the server
// and client certificate the Deployments mount.
func certificateNames(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, kubeDir, tlsComponent, "certificate.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var cert struct {
			Kind     string
			Metadata struct{ Name string }
			Spec     struct {
				SecretName string   `json:"secretName"`
				Usages     []string `json:"usages"`
				DNSNames   []string `json:"dnsNames"`
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &cert); err != nil {
			t.Fatalf("certificate.example.yaml: %v", err)
		}
		if cert.Kind != "Certificate" || cert.Spec.SecretName != "shoal-tls" {
			continue
		}
		for _, u := range []string{"server auth", "client auth"} {
			if !slices.Contains(cert.Spec.Usages, u) {
				t.Errorf("Certificate %s: usages %v lack %q", cert.Metadata.Name, cert.Spec.Usages, u)
			}
		}
		return cert.Spec.DNSNames
	}
	t.Fatal("certificate.example.yaml has no Certificate writing the Secret shoal-tls")
	return nil
}

// tlsSecret is the Secret shoal-tls as cert-manager writes it: a CA and a
// certificate for names signed by it, under the keys tls.crt, tls.key and
// ca.crt.
func tlsSecret(t *testing.T, names []string) *corev1.Secret {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoal-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "shoal"}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"ca.crt":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}}
	s.Name = "shoal-tls"
	return s
}
