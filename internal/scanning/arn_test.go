package scanning

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// The findings of one vulnerability share their ARN key's first two bytes, whatever the image;
// the rest of the key tells them apart.
func TestFindingARNKeyGroupsByVulnerability(t *testing.T) {
	origin := events.Origin{Account: "123456789012", Region: "eu-west-1"}
	prefix := "arn:aws:inspector2:eu-west-1:123456789012:finding/"
	key := func(repo, dgst, scanType, vuln string) string {
		arn := FindingARN(origin, repo, dgst, scanType, vuln)
		if !strings.HasPrefix(arn, prefix) {
			t.Fatalf("ARN %q does not begin with %q", arn, prefix)
		}
		k := strings.TrimPrefix(arn, prefix)
		if _, err := hex.DecodeString(k); err != nil || len(k) != 32 || strings.ToLower(k) != k {
			t.Fatalf("ARN key %q is not 32 lowercase hex digits", k)
		}
		return k
	}
	base := key("app", "sha256:1", policy.ScanTypeEnhanced, "CVE-2021-44228")
	for _, c := range []struct {
		name, repo, dgst, scanType, vuln string
		sameGroup                        bool
	}{
		{"another image", "app", "sha256:2", policy.ScanTypeEnhanced, "CVE-2021-44228", true},
		{"another repository", "web", "sha256:1", policy.ScanTypeEnhanced, "CVE-2021-44228", true},
		{"another vulnerability", "app", "sha256:1", policy.ScanTypeEnhanced, "CVE-2021-45046", false},
		{"another scan type", "app", "sha256:1", policy.ScanTypeBasic, "CVE-2021-44228", false},
	} {
		k := key(c.repo, c.dgst, c.scanType, c.vuln)
		if k == base {
			t.Errorf("%s: same key %s", c.name, k)
		}
		if got := k[:2*arnVulnerabilityBytes] == base[:2*arnVulnerabilityBytes]; got != c.sameGroup {
			t.Errorf("%s: keys %s and %s share their first %d bytes: %v, want %v", c.name, k, base, arnVulnerabilityBytes, got, c.sameGroup)
		}
	}
	if again := key("app", "sha256:1", policy.ScanTypeEnhanced, "CVE-2021-44228"); again != base {
		t.Errorf("the same finding named twice: %s, %s", base, again)
	}
}

// A finding keeps the ARN it is stored with, also one made as ARNs were made before (the whole
// key from one hash), so that an upgrade renames no finding; one of another account or region
// is named again.
func TestDiffFindingsKeepsStoredARN(t *testing.T) {
	s := newOneFindingScan(t)
	target, origin, t0, a := s.target, s.origin, s.t0, s.match
	derived := FindingARN(origin, target.Repository, target.Digest, target.ScanType, a.VulnerabilityID)
	if s.first.ARN != derived {
		t.Fatalf("new finding named %s, want %s", s.first.ARN, derived)
	}
	sum := sha256.Sum256([]byte("app\x00sha256:1\x00" + policy.ScanTypeEnhanced + "\x00CVE-1"))
	older := "arn:aws:inspector2:eu-west-1:123456789012:finding/" + hex.EncodeToString(sum[:16])
	for _, c := range []struct {
		name, stored, want string
		closed             bool
	}{
		{"as made before", older, older, false},
		{"as made before, reopened", older, older, true},
		{"as made now", derived, derived, false},
		{"of another region", "arn:aws:inspector2:us-east-1:123456789012:finding/" + hex.EncodeToString(sum[:16]), derived, false},
	} {
		prev := s.first
		prev.ARN = c.stored
		if c.closed {
			prev.Status = FindingClosed
		}
		writes, changed, err := diffFindings(target, []store.Finding{prev}, []match.Finding{a}, ImageInfo{}, origin, t0.Add(time.Hour))
		if err != nil || len(writes) != 1 {
			t.Fatalf("%s: %d writes, %v", c.name, len(writes), err)
		}
		if writes[0].ARN != c.want {
			t.Errorf("%s: written as %s, want %s", c.name, writes[0].ARN, c.want)
		}
		if wantChanged := c.closed; (len(changed) == 1) != wantChanged {
			t.Errorf("%s: %d changes", c.name, len(changed))
		}
	}
}
