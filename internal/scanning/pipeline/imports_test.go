package pipeline_test

import (
	"os/exec"
	"strings"
	"testing"
)

// `lading scan` runs the pipeline without a server: it must reach no store, blob store,
// advisory database, registry face or the scanning service above it. (SQLite itself is in
// reach, through inventory's reader of rpm databases.)
func TestPipelineNeedsNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/lading-registry/lading/internal/scanning/pipeline").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list listed %d packages", len(deps))
	}
	const module = "github.com/lading-registry/lading/internal/"
	for _, d := range deps {
		for _, banned := range []string{"store", "blob", "vulndb", "scanning", "app", "ecr", "oci", "registry", "events"} {
			if d == module+banned || strings.HasPrefix(d, module+banned+"/") && !strings.HasPrefix(d, module+"scanning/pipeline") {
				t.Errorf("the pipeline depends on %s", d)
			}
		}
	}
}
