package testserver

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Credentials of the S3 server tests start.
const (
	S3AccessKey = "LADINGTESTS3KEY"
	S3SecretKey = "lading-test-s3-secret-0123456789"
	S3Bucket    = "lading-blobs"
)

// S3 is a real S3 server (versitygw on a posix directory) for tests: started on a free port
// with a bucket, stopped when the test ends. Stop and Start again play an outage.
type S3 struct {
	Bin  string
	Dir  string // the posix root; the bucket is a directory in it
	Addr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartS3 starts versitygw (installed by .ci/install-tools) with one bucket.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	s := &S3{Bin: Tool(t, "versitygw"), Dir: t.TempDir(), Addr: FreeAddr(t)}
	if err := os.Mkdir(filepath.Join(s.Dir, S3Bucket), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URL is the --blobs value naming the bucket on this server.
func (s *S3) URL() string {
	return "s3://" + S3Bucket + "?endpoint=http://" + s.Addr + "&region=us-east-1"
}

// Env is what a client needs to reach the server through the standard AWS chain, with nothing
// read from the user's own configuration.
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + S3AccessKey, "AWS_SECRET_ACCESS_KEY=" + S3SecretKey, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PROFILE="}
}

// SetEnv sets Env for the test's own process (the driver reads the standard chain).
func (s *S3) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		for i := range len(kv) {
			if kv[i] == '=' {
				t.Setenv(kv[:i], kv[i+1:])
				break
			}
		}
	}
}

// Start runs the server (again) and waits until it answers.
func (s *S3) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Keep-alive as S3 itself does it (versitygw closes every connection without it).
	cmd := exec.Command(s.Bin, "--port", s.Addr, "--keep-alive", "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+S3AccessKey, "ROOT_SECRET_KEY="+S3SecretKey)
	logs, err := os.OpenFile(filepath.Join(s.Dir, "..", "versitygw.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		_ = logs.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logs.Close(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Ready when versitygw answers (an unsigned request is refused), not merely when the port
	// accepts: another process may hold the port, and then ours has exited or soon will.
	probe := &http.Client{Timeout: time.Second}
	defer probe.CloseIdleConnections()
	for {
		resp, err := probe.Get("http://" + s.Addr + "/")
		if err == nil {
			_ = resp.Body.Close()
			select {
			case <-exited:
			default:
				if resp.Header.Get("Server") == "VERSITYGW" {
					return nil
				}
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(s.Dir, "..", "versitygw.log"))
			return fmt.Errorf("versitygw exited during start-up; the end of its log:\n%s", tail(b, 2048))
		case <-ctx.Done():
			return fmt.Errorf("versitygw not answering after 30s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the server and waits for it.
func (s *S3) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}
