// Package tlsfiles builds TLS configurations from PEM files that are read
// again when they change, so certificates rotate (cert-manager renews them
// in place) without a restart: each handshake looks at the files' size and
// modification time and reloads them when either moved.
package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Server are a listener's TLS files.
type Server struct {
	// CertFile and KeyFile are the server's certificate chain and key.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the server require client certificates
	// signed by one of its CAs (mutual TLS).
	ClientCAFile string
}

// Enabled reports whether TLS is configured.
func (s Server) Enabled() bool { return s.CertFile != "" || s.KeyFile != "" }

// Validate checks the files exist and load.
func (s Server) Validate(flagPrefix string) error {
	switch {
	case !s.Enabled() && s.ClientCAFile != "":
		return fmt.Errorf("--%s.tls-client-ca-file needs --%s.tls-cert-file and --%s.tls-key-file", flagPrefix, flagPrefix, flagPrefix)
	case !s.Enabled():
		return nil
	case s.CertFile == "" || s.KeyFile == "":
		return fmt.Errorf("--%s.tls-cert-file and --%s.tls-key-file go together", flagPrefix, flagPrefix)
	}
	if _, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile); err != nil {
		return fmt.Errorf("--%s.tls-cert-file/--%s.tls-key-file: %w", flagPrefix, flagPrefix, err)
	}
	if s.ClientCAFile != "" {
		if _, err := loadPool(s.ClientCAFile); err != nil {
			return fmt.Errorf("--%s.tls-client-ca-file: %w", flagPrefix, err)
		}
	}
	return nil
}

// Config returns the server's TLS configuration; nil when TLS is off.
func (s Server) Config() (*tls.Config, *KeyPair, error) {
	if !s.Enabled() {
		return nil, nil, nil
	}
	kp := &KeyPair{certFile: s.CertFile, keyFile: s.KeyFile}
	if _, err := kp.get(); err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if s.ClientCAFile != "" {
		cas := &watched[*x509.CertPool]{file: s.ClientCAFile, load: loadPool}
		if _, err := cas.get(); err != nil {
			return nil, nil, err
		}
		// GetConfigForClient reads the CA file again when it changes too.
		cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			pool, err := cas.get()
			if err != nil {
				return nil, err
			}
			c := cfg.Clone()
			c.GetConfigForClient = nil
			c.ClientCAs = pool
			c.ClientAuth = tls.RequireAndVerifyClientCert
			return c, nil
		}
	}
	return cfg, kp, nil
}

// Client are the TLS files of a client of Shoal's services.
type Client struct {
	// Enabled turns TLS on even without files (the system's roots).
	Enabled bool
	// CAFile holds the CAs that sign the servers' certificates; empty: the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are the client's certificate for mutual TLS.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
}

// On reports whether the client speaks TLS.
func (c Client) On() bool { return c.Enabled || c.CAFile != "" || c.CertFile != "" }

// Config returns the client's TLS configuration; nil when TLS is off.
func (c Client) Config() (*tls.Config, error) {
	if !c.On() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pool, err := loadPool(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	if c.CertFile != "" {
		kp := &KeyPair{certFile: c.CertFile, keyFile: c.KeyFile}
		if _, err := kp.get(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// Pinned returns a client configuration that trusts exactly the
// certificate kp currently holds, with cert as the client certificate
// (mutual TLS). A process uses it to call its own listener over loopback,
// where the certificate's names do not match 127.0.0.1.
func Pinned(kp *KeyPair, cert *KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Go's own check is off because the names cannot match; the peer
		// is checked below, on every handshake, resumed ones included.
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection pins the peer to this process's own certificate
		VerifyConnection: func(cs tls.ConnectionState) error {
			own, err := kp.get()
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 || len(own.Certificate) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, own.Certificate[0]) {
				return errors.New("tls: the loopback peer is not this process's own listener")
			}
			return nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert.get()
		},
	}
}

// KeyPair is a certificate and key read from files, reloaded when they
// change.
type KeyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	stamp   [2]stamp
	current *tls.Certificate
}

// NewKeyPair returns the key pair of the files (loaded on first use).
func NewKeyPair(certFile, keyFile string) *KeyPair {
	return &KeyPair{certFile: certFile, keyFile: keyFile}
}

func (k *KeyPair) get() (*tls.Certificate, error) {
	sc, err1 := stampOf(k.certFile)
	sk, err2 := stampOf(k.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.current != nil {
			return k.current, nil // a file being replaced: keep serving the last good pair
		}
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.current != nil && k.stamp == [2]stamp{sc, sk} {
		return k.current, nil
	}
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		if k.current != nil {
			return k.current, nil // half-written during a rotation: try again at the next handshake
		}
		return nil, err
	}
	k.current, k.stamp = &c, [2]stamp{sc, sk}
	return k.current, nil
}

// watched is a file parsed with load, again when it changes.
type watched[T any] struct {
	file string
	load func(string) (T, error)

	mu      sync.Mutex
	stamp   stamp
	current T
	loaded  bool
}

func (w *watched[T]) get() (T, error) {
	st, err := stampOf(w.file)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil && w.loaded && st == w.stamp {
		return w.current, nil
	}
	v, lerr := w.load(w.file)
	if err != nil || lerr != nil {
		if w.loaded {
			return w.current, nil
		}
		return v, errors.Join(err, lerr)
	}
	w.current, w.stamp, w.loaded = v, st, true
	return v, nil
}

type stamp struct {
	size int64
	mod  time.Time
}

func stampOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{size: fi.Size(), mod: fi.ModTime()}, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}
