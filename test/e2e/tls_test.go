package e2e

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
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// TestTLSWithRealClients serves HTTPS with --tls-self-signed and drives crane, skopeo, oras and
// the AWS CLI over it, each given the server's certificate as its CA, and checks HTTP/2.
func TestTLSWithRealClients(t *testing.T) {
	srv := testserver.Start(t, ladingBin, "--tls-self-signed")
	ca := filepath.Join(srv.DataDir, "tls", "cert.pem")
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	sum := sha256.Sum256(block.Bytes)
	if lines := srv.Lines(hex.EncodeToString(sum[:])); len(lines) == 0 {
		t.Error("the server did not log the certificate's SHA-256 fingerprint")
	}
	if fi, err := os.Stat(filepath.Join(srv.DataDir, "tls", "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)

	// HTTP/2, verified against the CA.
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := h2.Get(srv.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v2/: %s, status %d; want HTTP/2 and 401", resp.Proto, resp.StatusCode)
	}
	// Without the CA, clients refuse the server.
	if _, err := http.Get(srv.URL() + "/v2/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA connected: %v", err)
	}

	_, img, _ := testImages(t)
	dockerConfig := srv.DockerConfig(t)
	crane := testserver.Tool(t, "crane")
	craneEnv := []string{"DOCKER_CONFIG=" + dockerConfig, "SSL_CERT_FILE=" + ca}
	ref := srv.Addr + "/tls/img:v1"
	run(t, craneEnv, crane, "push", singleLayout(t, img, nil), ref)
	if got := run(t, craneEnv, crane, "digest", ref); got != digestOf(t, img) {
		t.Fatalf("crane digest over TLS %s, want %s", got, digestOf(t, img))
	}

	skopeo := testserver.Tool(t, "skopeo")
	certDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	authfile := filepath.Join(dockerConfig, "config.json")
	out := filepath.Join(t.TempDir(), "skopeo-out")
	run(t, nil, skopeo, "copy", "--src-cert-dir", certDir, "--src-authfile", authfile, "docker://"+ref, "oci:"+out+":pulled")
	checkPulledLayout(t, out, true, img, nil)

	oras := testserver.Tool(t, "oras")
	orasOut := filepath.Join(t.TempDir(), "oras-out")
	run(t, nil, oras, "cp", "--from-registry-config", authfile, "--from-ca-file", ca, ref, "--to-oci-layout", orasOut+":pulled")
	checkPulledLayout(t, orasOut, true, img, nil)

	aws := exec.Command("/usr/bin/aws", "ecr", "describe-repositories", "--endpoint-url", srv.URL(), "--ca-bundle", ca,
		"--region", "us-east-1", "--output", "text", "--query", "repositories[].repositoryName")
	aws.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testserver.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+testserver.SecretAccessKey,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	got, err := aws.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "tls/img" {
		t.Fatalf("aws ecr describe-repositories over TLS: %v: %s", err, got)
	}
}

// TestPodmanOverTLS logs in, pushes and pulls with Debian's podman, given the self-signed
// certificate as its CA (its storage in a temporary vfs root, so it needs no daemon).
func TestPodmanOverTLS(t *testing.T) {
	podman := testserver.Tool(t, "podman")
	srv := testserver.Start(t, ladingBin, "--tls-self-signed")
	certDir := t.TempDir()
	caPEM, err := os.ReadFile(filepath.Join(srv.DataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	conf := filepath.Join(root, "storage.conf")
	if err := os.WriteFile(conf, []byte("[storage]\ndriver = \"vfs\"\nrunroot = \""+filepath.Join(root, "run")+"\"\ngraphroot = \""+filepath.Join(root, "graph")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"CONTAINERS_STORAGE_CONF=" + conf, "REGISTRY_AUTH_FILE=" + filepath.Join(root, "auth.json")}
	login := exec.Command(podman, "login", "--cert-dir", certDir, "-u", testserver.AccessKeyID, "--password-stdin", srv.Addr)
	login.Env = append(os.Environ(), env...)
	login.Stdin = strings.NewReader(testserver.SecretAccessKey)
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("podman login: %v: %s", err, out)
	}
	loaded := run(t, env, podman, "pull", "-q", "docker-archive:"+testfiles.Path(t, "images", "go-app.tar"))
	ref := srv.Addr + "/podman/go-app:1.0.0"
	run(t, env, podman, "push", "--cert-dir", certDir, loaded, ref)
	run(t, env, podman, "rmi", "-f", loaded)
	if got := run(t, env, podman, "pull", "-q", "--cert-dir", certDir, ref); got != loaded {
		t.Fatalf("pulled image %s, pushed %s", got, loaded)
	}
}

// TestTLSCertificateReloads: a renewed certificate written over --tls-cert/--tls-key is served to
// new connections without a restart.
func TestTLSCertificateReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, "first")
	srv := testserver.Start(t, ladingBin, "--tls-cert", certFile, "--tls-key", keyFile)
	if got := servedCert(t, srv.Addr); got != first {
		t.Fatalf("served %s, want the first certificate %s", got, first)
	}
	second := writeCert(t, certFile, keyFile, "second")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if servedCert(t, srv.Addr) == second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not picked up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeCert writes a fresh self-signed certificate for 127.0.0.1 and returns its fingerprint.
func writeCert(t *testing.T, certFile, keyFile, name string) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// servedCert is the fingerprint of the certificate a new TLS connection to addr gets.
func servedCert(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the fingerprint is what is checked
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:])
}
