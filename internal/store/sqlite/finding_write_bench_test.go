package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// BenchmarkFindingWrites is the store's cost of an image's first scan: 60 findings with the
// scanner's details (three packages each, the same versions in every image on one of ten bases)
// written in one ApplyScans, as the scanner does.
func BenchmarkFindingWrites(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir()+"/meta.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "app"}); err != nil {
		b.Fatal(err)
	}
	details := make([][][]byte, 10) // by base, by vulnerability
	for base := range details {
		layer := fmt.Sprintf("sha256:%064x", base)
		for v := range 60 {
			d, err := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: fmt.Sprintf("CVE-2026-%04d", v),
				Title: fmt.Sprintf("CVE-2026-%04d - pkg%d", v, v), Description: "An overflow in the parser of the package.", Severity: "HIGH",
				Packages: []match.VulnerablePackage{
					{Name: fmt.Sprintf("pkg%d", v), Version: "1.2.3", Release: "1", Arch: "amd64", FilePath: "var/lib/dpkg/status", Layer: layer,
						CreatedBy: "ADD rootfs.tar.xz /", FixedInVersion: "1.2.4", PackageManager: "OS", Ecosystem: "Debian:12"},
					{Name: fmt.Sprintf("lib%d", v), Version: "1.2.3", FilePath: "var/lib/dpkg/status", Layer: layer, CreatedBy: "ADD rootfs.tar.xz /"},
					{Name: "app", Version: "0.1", FilePath: "app/go.mod", Layer: "sha256:app", CreatedBy: "COPY app /app"},
				}}, Image: scanning.ImageInfo{Architecture: "amd64", Platform: "DEBIAN_12"}})
			if err != nil {
				b.Fatal(err)
			}
			details[base] = append(details[base], d)
		}
	}
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		dgst := fakeDigest(fmt.Sprintf("%x", i+1))
		b.StopTimer()
		m := store.Manifest{Repository: "app", Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t := store.ScanTarget{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced}
		fs := make([]store.Finding, 0, 60)
		for v, d := range details[i%len(details)] {
			fs = append(fs, store.Finding{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: fmt.Sprintf("CVE-2026-%04d", v),
				ARN: fmt.Sprintf("arn:aws:inspector2:us-east-1:123456789012:finding/%032x", i*60+v), Status: "ACTIVE", Severity: "HIGH",
				Fingerprint: fmt.Sprintf("%064x", v), Detail: d, FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now})
		}
		if err := db.ApplyScans(ctx, []store.ScanTarget{t}, func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: fs}, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var n int
	if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM finding_detail_view").Scan(&n); err != nil || n != 60*b.N {
		b.Fatalf("%d details written (%v), want %d", n, err, 60*b.N)
	}
}
