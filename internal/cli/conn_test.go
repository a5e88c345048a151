package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// The admin token a local shoal serve wrote is sent to local servers only;
// --token (or SHOAL_TOKEN) wins everywhere.
func TestSecret(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, adminTokenFile), []byte("shoal_local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tt := range []struct {
		addr, token, want string
	}{
		{"localhost:9090", "", "shoal_local"},
		{"127.0.0.1:9090", "", "shoal_local"},
		{"[::1]:9090", "", "shoal_local"},
		{"shoal.example.com:9090", "", ""},
		{"10.0.0.7:9090", "", ""},
		{"shoal.example.com:9090", "shoal_given", "shoal_given"},
		{"localhost:9090", " shoal_given ", "shoal_given"},
	} {
		f := connFlags{addr: tt.addr, token: tt.token}
		if got, err := f.secret(); err != nil || got != tt.want {
			t.Errorf("secret(addr %s, token %q) = %q, %v; want %q", tt.addr, tt.token, got, err, tt.want)
		}
	}
}
