package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// TLS says how `lading serve` serves HTTPS: from a certificate and key in files (reloaded when
// they change, so a renewal needs no restart), or from a self-signed certificate it makes and
// keeps in the data dir. The zero value serves plain HTTP.
type TLS struct {
	CertFile, KeyFile string
	SelfSigned        bool
}

func (t TLS) enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.SelfSigned }

// certFiles serves a certificate from files, reading them again when either changes.
type certFiles struct {
	cert, key string
	log       *slog.Logger
	now       func() time.Time

	mu              sync.Mutex
	current         *tls.Certificate
	certMod, keyMod time.Time
	lastCheck       time.Time
	checkEvery      time.Duration
}

func newCertFiles(cert, key string, log *slog.Logger) (*certFiles, error) {
	if cert == "" || key == "" {
		return nil, errors.New("--tls-cert and --tls-key must be given together")
	}
	c := &certFiles{cert: cert, key: key, log: log, now: time.Now, checkEvery: time.Second}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the pair if a file changed since the last read.
func (c *certFiles) reload() error {
	ci, err := os.Stat(c.cert)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	ki, err := os.Stat(c.key)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	if c.current != nil && ci.ModTime().Equal(c.certMod) && ki.ModTime().Equal(c.keyMod) {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return fmt.Errorf("tls certificate and key: %w", err)
	}
	if c.current != nil {
		c.log.Info("reloaded the TLS certificate", "file", c.cert, "sha256", fingerprint(pair.Certificate[0]))
	}
	c.current, c.certMod, c.keyMod = &pair, ci.ModTime(), ki.ModTime()
	return nil
}

// get is tls.Config.GetCertificate: it looks at the files at most once a second. A pair that
// does not load (a renewal caught half written) leaves the previous one in service.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.lastCheck) >= c.checkEvery {
		c.lastCheck = now
		if err := c.reload(); err != nil {
			c.log.Warn("keeping the TLS certificate in service", "err", err)
		}
	}
	return c.current, nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// selfSignedFiles are where --tls-self-signed keeps its certificate, in the data dir.
func selfSignedFiles(dataDir string) (cert, key string) {
	dir := filepath.Join(dataDir, "tls")
	return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
}

// ensureSelfSigned makes, or keeps when it still fits, a self-signed certificate for the hosts
// the registry is reached by. It is its own CA, so clients are given the certificate file as
// their CA bundle.
func ensureSelfSigned(dataDir string, hosts []string, now time.Time, log *slog.Logger) (cert, key string, err error) {
	cert, key = selfSignedFiles(dataDir)
	if c, err := tls.LoadX509KeyPair(cert, key); err == nil {
		if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil && covers(leaf, hosts) && leaf.NotAfter.After(now.Add(30*24*time.Hour)) {
			log.Info("serving TLS with the self-signed certificate", "file", cert, "sha256", fingerprint(c.Certificate[0]))
			return cert, key, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(cert), 0o700); err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"Lading self-signed"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(825 * 24 * time.Hour), // the longest validity clients accept for a server certificate
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	if err := writePEM(key, "EC PRIVATE KEY", keyDER); err != nil {
		return "", "", err
	}
	if err := writePEM(cert, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	// Warn, so that it shows at every log level: clients need this file (or the fingerprint).
	log.Warn("made a self-signed TLS certificate; give clients this file as their CA", "file", cert, "hosts", hosts, "sha256", fingerprint(der))
	return cert, key, nil
}

func writePEM(path, typ string, der []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

// tlsHosts are the names a self-signed certificate for addr must carry: the address's host, or
// for a wildcard address the machine's name and loopback; localhost and 127.0.0.1 always.
func tlsHosts(addr string) []string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	hosts := []string{}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil && name != "" {
			hosts = append(hosts, name)
		}
	} else {
		hosts = append(hosts, host)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// tlsConfig is the server's TLS configuration, or nil for plain HTTP.
func (a *App) tlsConfig() (*tls.Config, error) {
	t := a.cfg.TLS
	if !t.enabled() {
		return nil, nil
	}
	cert, key := t.CertFile, t.KeyFile
	if t.SelfSigned {
		if cert != "" || key != "" {
			return nil, errors.New("--tls-self-signed and --tls-cert/--tls-key exclude each other")
		}
		var err error
		if cert, key, err = ensureSelfSigned(a.cfg.DataDir, tlsHosts(a.cfg.Addr), time.Now(), a.log); err != nil {
			return nil, err
		}
	}
	files, err := newCertFiles(cert, key, a.log)
	if err != nil {
		return nil, err
	}
	return &tls.Config{GetCertificate: files.get, MinVersion: tls.VersionTLS12}, nil
}
