package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// TestFindingDetailsReadOnDemand checks that an update sees findings without their detail but
// with their package keys, reads the detail it asks for, and that a finding written back
// without its detail keeps the stored one, while a new finding without one is refused.
func TestFindingDetailsReadOnDemand(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	dgst := fakeDigest("d")
	m := store.Manifest{Repository: "app", Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	target := store.ScanTarget{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	keys := []store.PackageKey{{Ecosystem: "Debian:12", Name: "openssl"}, {Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core"}}
	finding := func(id string, keys []store.PackageKey, detail string) store.Finding {
		return store.Finding{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: id, ARN: "arn:" + id,
			Status: "ACTIVE", Severity: "HIGH", Fingerprint: "fp-" + detail, PackageKeys: keys, Detail: []byte(detail),
			FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}
	}
	apply := func(update func(st store.ScanState) ([]store.Finding, error)) error {
		return db.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
			fs, err := update(st)
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: fs}, err
		})
	}
	tabbed := []store.PackageKey{{Ecosystem: "npm", Name: "odd\tname"}}
	if err := apply(func(store.ScanState) ([]store.Finding, error) {
		return []store.Finding{finding("CVE-1", keys, `{"n":1}`), finding("CVE-2", tabbed, `{"n":2}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}

	err := apply(func(st store.ScanState) ([]store.Finding, error) {
		if len(st.Findings) != 2 {
			t.Fatalf("%d findings, want 2", len(st.Findings))
		}
		one, two := st.Findings[0], st.Findings[1]
		if one.Detail != nil || two.Detail != nil {
			t.Fatalf("findings read with their detail: %q %q", one.Detail, two.Detail)
		}
		if !slices.Equal(one.PackageKeys, keys) {
			t.Fatalf("package keys %v, want %v", one.PackageKeys, keys)
		}
		if two.PackageKeys != nil {
			t.Fatalf("keys that cannot be written back were stored: %v", two.PackageKeys)
		}
		details, err := st.Details(ctx, []string{"CVE-2", "CVE-9"})
		if err != nil {
			t.Fatal(err)
		}
		if len(details) != 1 || string(details["CVE-2"]) != `{"n":2}` {
			t.Fatalf("details %q", details)
		}
		// CVE-1 closes without its detail loaded: the stored detail stays.
		one.Status, one.UpdatedAt = "CLOSED", now.Add(time.Hour)
		return []store.Finding{one}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Findings(ctx, "app", dgst, policy.ScanTypeEnhanced)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Status != "CLOSED" || string(got[0].Detail) != `{"n":1}` || string(got[1].Detail) != `{"n":2}` {
		t.Fatalf("findings after the update: %+v", got)
	}

	err = apply(func(store.ScanState) ([]store.Finding, error) {
		f := finding("CVE-3", keys, "")
		f.Detail = nil
		return []store.Finding{f}, nil
	})
	if !errors.Is(err, errNoDetail) {
		t.Fatalf("new finding without detail: got %v, want errNoDetail", err)
	}
	if got, _ := db.Findings(ctx, "app", dgst, policy.ScanTypeEnhanced); len(got) != 2 {
		t.Fatalf("the refused update wrote %d findings", len(got))
	}

	// Deleting the image deletes the details with the findings.
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return deleteManifestTx(ctx, tx, "app", dgst) }); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM finding_details").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d details left after the image was deleted (%v)", n, err)
	}
}

// TestMigrationMovesFindingDetails writes a finding in the schema before 0022 and checks that
// the migration keeps it whole, with its package keys unknown.
func TestMigrationMovesFindingDetails(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 21)
	dgst := fakeDigest("e")
	if _, err := w.ExecContext(ctx, `INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score,
		fingerprint, detail, first_observed_at, last_observed_at, updated_at) VALUES ('app', ?, 'ENHANCED', 'CVE-7', 'arn:7', 'ACTIVE', 'LOW', 2.5,
		'fp', '{"old":true,"image":{"architecture":"arm64"}}', 1000, 2000, 1500)`, dgst); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO image_scans(repository, image_digest, scan_type, status, updated_at)
		VALUES ('app', ?, 'ENHANCED', 'ACTIVE', 1500), ('app', ?, 'ENHANCED', 'ACTIVE', 1500)`, dgst, fakeDigest("f")); err != nil {
		t.Fatal(err)
	}
	db := reopen()
	got, err := db.Findings(ctx, "app", dgst, "ENHANCED")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d findings after the migration, want 1", len(got))
	}
	f := got[0]
	if string(f.Detail) != `{"old":true,"image":{"architecture":"arm64"}}` || f.PackageKeys != nil || f.ARN != "arn:7" || f.Score != 2.5 || f.Fingerprint != "fp" ||
		f.FirstObservedAt.UnixMilli() != 1000 || f.LastObservedAt.UnixMilli() != 2000 || f.UpdatedAt.UnixMilli() != 1500 {
		t.Fatalf("finding after the migration: %+v", f)
	}

	// The image facts are taken from the finding; an image without findings has none.
	for d, want := range map[string]string{dgst: `{"architecture":"arm64"}`, fakeDigest("f"): ""} {
		sc, err := db.ImageScan(ctx, "app", d, "ENHANCED")
		if err != nil || string(sc.ImageFacts) != want {
			t.Fatalf("image facts of %s: %q (%v), want %q", d, sc.ImageFacts, err, want)
		}
	}
	// A scan state written without facts keeps them; written with facts, replaces them.
	for _, put := range []struct{ facts, want string }{{"", `{"architecture":"arm64"}`}, {`{"platform":"X"}`, `{"platform":"X"}`}} {
		if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: dgst, ScanType: "ENHANCED", Status: "ACTIVE",
			ImageFacts: []byte(put.facts)}); err != nil {
			t.Fatal(err)
		}
		if sc, err := db.ImageScan(ctx, "app", dgst, "ENHANCED"); err != nil || string(sc.ImageFacts) != put.want {
			t.Fatalf("after writing %q: facts %q (%v), want %q", put.facts, sc.ImageFacts, err, put.want)
		}
	}
}
