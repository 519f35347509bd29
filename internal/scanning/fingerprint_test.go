package scanning

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

func TestFindingFingerprintIsShortPrefix(t *testing.T) {
	for _, detail := range []string{"", `{"finding":{}}`, "x"} {
		sum := sha256.Sum256([]byte(detail))
		full := hex.EncodeToString(sum[:])
		got := FindingFingerprint([]byte(detail))
		if len(got) != 16 || got != full[:16] {
			t.Errorf("FindingFingerprint(%q) = %q, want the first 16 of %s", detail, got, full)
		}
	}
}

func TestSameFingerprint(t *testing.T) {
	fp := FindingFingerprint([]byte("detail"))
	sum := sha256.Sum256([]byte("detail"))
	long := hex.EncodeToString(sum[:])
	other := FindingFingerprint([]byte("other"))
	for _, c := range []struct {
		name, stored, fp string
		want             bool
	}{
		{"short, same", fp, fp, true},
		{"short, other", other, fp, false},
		{"long (before the upgrade), same detail", long, fp, true},
		{"long, other detail", hex.EncodeToString(make([]byte, 32)), fp, false},
		{"long against long", long, long, true},
		{"prefix of another length", long[:20], fp, false},
		{"test string", "x", "x", true},
		{"empty stored", "", fp, false},
	} {
		if got := SameFingerprint(c.stored, c.fp); got != c.want {
			t.Errorf("%s: SameFingerprint(%q, %q) = %v, want %v", c.name, c.stored, c.fp, got, c.want)
		}
	}
}

// oneFindingScan is an image's first scan that matches one vulnerability.
type oneFindingScan struct {
	origin events.Origin
	target store.ScanTarget
	t0     time.Time
	match  match.Finding
	first  store.Finding // what the scan writes
}

func newOneFindingScan(t *testing.T) oneFindingScan {
	t.Helper()
	s := oneFindingScan{origin: events.Origin{Account: "123456789012", Region: "eu-west-1"},
		target: store.ScanTarget{Repository: "app", Digest: "sha256:1", ScanType: policy.ScanTypeEnhanced},
		t0:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		match:  match.Finding{VulnerabilityID: "CVE-1", Severity: "HIGH", Packages: []match.VulnerablePackage{{Name: "a", Version: "1"}}}}
	writes, _, err := diffFindings(s.target, nil, []match.Finding{s.match}, ImageInfo{}, s.origin, s.t0)
	if err != nil || len(writes) != 1 {
		t.Fatalf("first scan: %d writes, %v", len(writes), err)
	}
	s.first = writes[0]
	return s
}

// A finding stored with the whole SHA-256 (before the upgrade) is unchanged when its detail is.
func TestDiffFindingsLongStoredFingerprint(t *testing.T) {
	s := newOneFindingScan(t)
	target, origin, t0, a := s.target, s.origin, s.t0, s.match
	old := s.first
	sum := sha256.Sum256(old.Detail)
	old.Fingerprint = hex.EncodeToString(sum[:])
	for _, c := range []struct {
		name    string
		fp      string
		changes int
	}{
		{"whole SHA-256 of the same detail", old.Fingerprint, 0},
		{"whole SHA-256 of another detail", hex.EncodeToString(make([]byte, 32)), 1},
	} {
		prev := old
		prev.Fingerprint = c.fp
		w, changed, err := diffFindings(target, []store.Finding{prev}, []match.Finding{a}, ImageInfo{}, origin, t0.Add(time.Hour))
		if err != nil || len(changed) != c.changes || len(w) != 1 {
			t.Fatalf("%s: %d changes (want %d), %v", c.name, len(changed), c.changes, err)
		}
		if len(w[0].Fingerprint) != 16 {
			t.Errorf("%s: written fingerprint %q", c.name, w[0].Fingerprint)
		}
	}
}
