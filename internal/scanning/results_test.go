package scanning

import (
	"maps"
	"testing"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// TestEnhancedCountsSayUntriaged: DescribeImages' counts of an enhanced scan use the words of
// its findings (UNTRIAGED for an unrated one), counting ACTIVE findings only.
func TestEnhancedCountsSayUntriaged(t *testing.T) {
	fs := []store.Finding{{Status: FindingActive, Severity: "UNDEFINED"}, {Status: FindingActive, Severity: "HIGH"},
		{Status: FindingClosed, Severity: "UNDEFINED"}}
	got, err := listedCounts(policy.ScanTypeEnhanced, fs)
	if want := map[string]int{"UNTRIAGED": 1, "HIGH": 1}; err != nil || !maps.Equal(got, want) {
		t.Fatalf("counts %v (%v), want %v", got, err, want)
	}
}
