package e2e

import (
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// TestThreeNodeConformance: the OCI conformance suite against three nodes on one PostgreSQL
// schema and one bucket, each request of the suite going to the next node.
func TestThreeNodeConformance(t *testing.T) {
	c := testserver.StartCluster(t, ladingBin, 3)
	runConformance(t, c.Front)
	// The suite's requests were spread over every node, not answered by one.
	for i, n := range c.Served() {
		if n < 100 {
			t.Errorf("node %d answered %d requests of the suite (served: %v)", i, n, c.Served())
		}
	}
	if repositoriesIn(t, c.Metadata) == 0 {
		t.Fatal("no repository in PostgreSQL after the conformance suite")
	}
}
