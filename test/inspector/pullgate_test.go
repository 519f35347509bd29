package inspector_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// cranePull pulls the seed image with the credentials of dockerConfig (a folder holding
// config.json) and returns crane's output and error.
func (s *story) cranePull(t *testing.T, dockerConfig string) (string, error) {
	t.Helper()
	cmd := exec.Command(testserver.Tool(t, "crane"), "pull", "--insecure", "--format=oci", s.srv.Addr+"/"+repo+":4.4.0", t.TempDir())
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// keyConfig makes an access key with a name and a read-only policy, and a docker config for it.
func (s *story) keyConfig(t *testing.T, name string) string {
	t.Helper()
	out := s.srv.RunStore(t, "admin", "access-key", "create", "--name", name,
		"--preset", "AmazonEC2ContainerRegistryReadOnly", "--json")
	var k struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatalf("access-key create: %v: %s", err, out)
	}
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(k.AccessKeyID + ":" + k.SecretAccessKey))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, s.srv.Addr, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPullGate is issue 13's story: with a CRITICAL gate the seed image's pull is refused
// naming Log4Shell; an exempt identity, a repository override and a suppression rule each let
// it through.
func TestPullGate(t *testing.T) {
	s := newStory(t, "--pull-gate-severity", "CRITICAL", "--pull-gate-grace", "0s", "--pull-gate-exempt", "gate-exempt")
	admin := s.srv.DockerConfig(t)
	refused := func(why string) {
		t.Helper()
		out, err := s.cranePull(t, admin)
		if err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, log4shell) || !strings.Contains(out, "ACTIVE finding") ||
			!strings.Contains(out, "/console/image?") {
			t.Fatalf("%s: crane pull: %v\n%s", why, err, out)
		}
	}
	allowed := func(why, config string) {
		t.Helper()
		if out, err := s.cranePull(t, config); err != nil {
			t.Fatalf("%s: crane pull: %v\n%s", why, err, out)
		}
	}
	refused("with a CRITICAL gate")
	allowed("an exempt identity", s.keyConfig(t, "gate-exempt"))
	if out, err := s.cranePull(t, s.keyConfig(t, "not-exempt")); err == nil || !strings.Contains(out, log4shell) {
		t.Errorf("an identity the gate does not name pulled: %v\n%s", err, out)
	}

	// A repository's override, set in the data directory beside the running server.
	s.srv.RunStore(t, "admin", "pull-gate", "set", "--repository", repo, "--severity", "NONE")
	if out := s.srv.RunStore(t, "admin", "pull-gate", "list"); !strings.Contains(out, repo) {
		t.Errorf("pull-gate list: %s", out)
	}
	allowed("the repository's gate off", admin)
	s.srv.RunStore(t, "admin", "pull-gate", "delete", "--repository", repo)
	refused("the registry's gate again")

	// A suppression rule of the repository's CRITICAL findings lifts them.
	created := s.aws(t, "inspector2", "create-filter", "--name", "accepted-critical", "--action", "SUPPRESS", "--reason", "accepted risk",
		"--filter-criteria", `{"ecrImageRepositoryName":[{"comparison":"EQUALS","value":"`+repo+`"}],"severity":[{"comparison":"EQUALS","value":"CRITICAL"}]}`)
	allowed("after a suppression rule", admin)
	s.aws(t, "inspector2", "delete-filter", "--arn", created["arn"].(string))
	refused("after the rule is deleted")
}
