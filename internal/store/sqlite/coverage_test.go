package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/store"
)

// coverageColumns renders a row of image_coverage, or of its recount.
const coverageColumns = `repository || ' ' || digest || ' ' || pushed_at || ' ' || last_pulled_at || ' ' || coalesce(status, '-') || ' ' ||
	coalesce(description_head, '-') || ' ' || no_packages`

// coverageRecount is image_coverage computed from the base tables (the migration's backfill).
const coverageRecount = `SELECT m.repository AS repository, m.digest AS digest, m.pushed_at AS pushed_at, m.last_pulled_at AS last_pulled_at,
		s.status AS status, substr(s.description, 1, 32) AS description_head, coalesce(ii.os = '' AND ii.package_count = 0, 0) AS no_packages
	FROM manifests m
	LEFT JOIN image_scans s ON s.repository = m.repository AND s.image_digest = m.digest AND s.scan_type = 'ENHANCED'
	LEFT JOIN image_inventories ii ON ii.id = s.inventory_id
	WHERE ` + imageCondition

// coverageCountsFromBase is CoverageCounts as it was before image_coverage (0042): grouped
// from manifests, image_scans and image_inventories.
func coverageCountsFromBase(ctx context.Context, db *DB, q findings.CoverageCountQuery) ([]findings.CoverageGroup, error) {
	pushedSince := int64(math.MinInt64)
	if !q.PushedSince.IsZero() {
		pushedSince = ceilMS(q.PushedSince)
	}
	return queryAll(ctx, db.Reader(), func(r rowScanner) (findings.CoverageGroup, error) {
		var g findings.CoverageGroup
		var status sql.NullString
		var failure, noPackages bool
		if err := r.Scan(&g.Repository, &status, &failure, &noPackages, &g.Covered, &g.Images); err != nil {
			return g, err
		}
		if status.Valid {
			g.Scan = &findings.CoverageScan{Status: status.String, NoPackages: noPackages}
			if failure {
				g.Scan.Description = q.FailurePrefix
			}
		}
		return g, nil
	}, `SELECT m.repository, s.status, coalesce(substr(s.description, 1, length(?1)) = ?1, 0), ii.id IS NOT NULL,
			m.pushed_at >= ?2 OR (m.last_pulled_at > 0 AND m.last_pulled_at >= ?3), count(*)
		FROM manifests m
		LEFT JOIN image_scans s ON s.repository = m.repository AND s.image_digest = m.digest AND s.scan_type = 'ENHANCED'
		LEFT JOIN image_inventories ii ON ii.id = s.inventory_id AND ii.os = '' AND ii.package_count = 0
		WHERE `+imageCondition+` GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
		q.FailurePrefix, pushedSince, ceilMS(q.PulledSince))
}

// checkCoverage: image_coverage holds what a recount from the base tables gives, and
// CoverageCounts what the grouping of the base tables gives, under several windows and prefixes.
func checkCoverage(t *testing.T, db *DB, now time.Time, step string) {
	t.Helper()
	ctx := context.Background()
	kept, err := queryStrings(ctx, db.Reader(), "SELECT "+coverageColumns+" FROM image_coverage ORDER BY repository, digest")
	if err != nil {
		t.Fatal(err)
	}
	recount, err := queryStrings(ctx, db.Reader(), "SELECT "+coverageColumns+" FROM ("+coverageRecount+") ORDER BY repository, digest")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(kept, recount) {
		t.Fatalf("%s: image_coverage\n%s\nrecount\n%s", step, strings.Join(kept, "\n"), strings.Join(recount, "\n"))
	}
	for _, q := range []findings.CoverageCountQuery{
		{PulledSince: now.Add(-24 * time.Hour), FailurePrefix: "UnsupportedImageError"},
		{PushedSince: now.Add(-time.Hour), PulledSince: now.Add(-24 * time.Hour), FailurePrefix: "UnsupportedImageError"},
		{PushedSince: now.Add(time.Hour), PulledSince: now.Add(-time.Minute), FailurePrefix: "scan "},
		{PushedSince: now.Add(-48 * time.Hour), PulledSince: now.Add(-48 * time.Hour), FailurePrefix: ""},
	} {
		got, err := db.CoverageCounts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := coverageCountsFromBase(ctx, db, q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Images, want) {
			t.Fatalf("%s: CoverageCounts(%+v)\n%s\nfrom the base tables\n%s", step, q, groupsString(got.Images), groupsString(want))
		}
	}
}

func groupsString(gs []findings.CoverageGroup) string {
	var b strings.Builder
	for _, g := range gs {
		fmt.Fprintf(&b, "%s covered=%v n=%d", g.Repository, g.Covered, g.Images)
		if g.Scan != nil {
			fmt.Fprintf(&b, " %s %q empty=%v", g.Scan.Status, g.Scan.Description, g.Scan.NoPackages)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestImageCoverageKept: image_coverage (0042) follows every kind of write of the tables it is
// made of: pushes of images and of what is not an image, pulls, scan states written, changed
// and replaced, inventories replaced and pruned, manifests and repositories deleted.
func TestImageCoverageKept(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	db.SetClock(func() time.Time { return now })
	check := func(step string) {
		t.Helper()
		checkCoverage(t, db, now, step)
	}
	image := func(repo, digest string) store.Manifest {
		return store.Manifest{Repository: repo, Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json",
			ConfigMediaType: "application/vnd.oci.image.config.v1+json", Size: 10, Content: []byte("{}")}
	}
	push := func(m store.Manifest) {
		t.Helper()
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(s store.ImageScan) {
		t.Helper()
		s.UpdatedAt = now
		if err := db.PutImageScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	inventory := func(digest, os string, packages int) int64 {
		t.Helper()
		id, err := db.PutImageInventory(ctx, digest, "ENHANCED", "fp", os, nil, packages, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, repo := range []string{"app", "web", "gone"} {
		if _, err := db.CreateRepository(ctx, store.Repository{Name: repo}); err != nil {
			t.Fatal(err)
		}
	}
	check("empty")

	d1, d2, d3, d4, d5 := fakeDigest("1"), fakeDigest("2"), fakeDigest("3"), fakeDigest("4"), fakeDigest("5")
	push(image("app", d1))
	now = t0.Add(time.Hour)
	push(image("app", d2))
	push(image("web", d1))
	index := image("app", d3)
	index.MediaType, index.ConfigMediaType = "application/vnd.oci.image.index.v1+json", ""
	push(index)
	artifact := image("web", d3)
	artifact.ArtifactType = "application/vnd.example+json"
	push(artifact)
	check("pushed: images, an index, an artifact")

	app1 := image("app", d1)
	if err := db.MarkPulled(ctx, app1, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkPulled(ctx, index, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("pulled")

	scan(store.ImageScan{Repository: "app", Digest: d1, ScanType: "ENHANCED", Status: "PENDING"})
	scan(store.ImageScan{Repository: "web", Digest: d1, ScanType: "BASIC", Status: "COMPLETE"})
	check("scans pending, a basic scan")

	full := inventory(d1, "Debian:12", 5)
	scan(store.ImageScan{Repository: "app", Digest: d1, ScanType: "ENHANCED", Status: "ACTIVE", Description: "Continuous scan is selected for the image.",
		InventoryID: full, CompletedAt: now})
	empty := inventory(d2, "", 0)
	scan(store.ImageScan{Repository: "app", Digest: d2, ScanType: "ENHANCED", Status: "ACTIVE", InventoryID: empty, CompletedAt: now})
	scan(store.ImageScan{Repository: "web", Digest: d1, ScanType: "ENHANCED", Status: "FAILED", Description: "UnsupportedImageError: the image has no layers"})
	check("scanned: active, active without packages, failed")

	inventory(d1, "", 0)
	check("inventory replaced by an empty one")
	inventory(d2, "Alpine:v3.20", 3)
	check("inventory replaced by one with packages")

	scan(store.ImageScan{Repository: "web", Digest: d1, ScanType: "ENHANCED", Status: "FAILED", Description: "the scanner stopped"})
	scan(store.ImageScan{Repository: "app", Digest: d2, ScanType: "ENHANCED", Status: "SCAN_ELIGIBILITY_EXPIRED", InventoryID: empty})
	check("scan states changed")

	// A scan state may come before its manifest (a digest scanned in one repository, pushed
	// later to another is not: the state is per repository).
	scan(store.ImageScan{Repository: "app", Digest: d4, ScanType: "ENHANCED", Status: "IN_PROGRESS", Description: "scan in progress"})
	check("scan of an image not pushed")
	now = t0.Add(3 * time.Hour)
	push(image("app", d4))
	push(image("gone", d5))
	scan(store.ImageScan{Repository: "gone", Digest: d5, ScanType: "ENHANCED", Status: "ACTIVE"})
	check("pushed after its scan")

	// An inventory no scan names any more is pruned.
	orphan := inventory(d5, "", 0)
	scan(store.ImageScan{Repository: "gone", Digest: d5, ScanType: "ENHANCED", Status: "ACTIVE", InventoryID: orphan})
	check("scan of an empty inventory")
	if _, err := db.DeleteManifest(ctx, "gone", d5, true); err != nil {
		t.Fatal(err)
	}
	check("manifest deleted")
	if _, err := db.PruneInventories(ctx, now.Add(time.Hour), false); err != nil {
		t.Fatal(err)
	}
	check("inventories pruned")

	push(image("gone", d5))
	push(image("gone", d1))
	scan(store.ImageScan{Repository: "gone", Digest: d1, ScanType: "ENHANCED", Status: "ACTIVE", InventoryID: full})
	check("pushed again")
	if _, err := db.DeleteRepository(ctx, "gone", true); err != nil {
		t.Fatal(err)
	}
	check("repository deleted")
	if _, err := db.DeleteManifest(ctx, "app", d1, true); err != nil {
		t.Fatal(err)
	}
	check("scanned manifest deleted")

	var n int
	if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM image_coverage").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 { // app d2, app d4, web d1
		t.Fatalf("image_coverage holds %d images, want 3", n)
	}

	// Writes the store's code does not make today, which the triggers follow all the same.
	for _, w := range []struct{ step, sql string }{
		{"a scan state deleted alone", "DELETE FROM image_scans WHERE repository = 'app' AND image_digest = '" + d4 + "'"},
		{"a scan naming an inventory not stored yet", "INSERT INTO image_scans(repository, image_digest, scan_type, status, inventory_id, updated_at) VALUES ('app', '" + d4 + "', 'ENHANCED', 'ACTIVE', 99, 1)"},
		{"that inventory stored", "INSERT INTO image_inventories(id, image_digest, mode, os, package_count, inventory, created_at) VALUES (99, '" + d4 + "', 'BASIC', '', 0, x'00', 1)"},
		{"an inventory named by a scan deleted", "DELETE FROM image_inventories WHERE id = 99"},
		{"an image made an artifact", "UPDATE manifests SET artifact_type = 'application/x' WHERE repository = 'app' AND digest = '" + d2 + "'"},
		{"an artifact made an image", "UPDATE manifests SET artifact_type = '' WHERE repository = 'app' AND digest = '" + d2 + "'"},
		{"a scan state rewritten as it was (a re-evaluation)", "UPDATE image_scans SET status = status, description = description, inventory_id = inventory_id WHERE repository = 'web' AND image_digest = '" + d1 + "' AND scan_type = 'ENHANCED'"},
		{"a description changed past what coverage holds of it", "UPDATE image_scans SET description = description || ' (again)' WHERE repository = 'web' AND image_digest = '" + d1 + "' AND scan_type = 'ENHANCED'"},
		{"a description changed within it", "UPDATE image_scans SET description = 'UnsupportedImageError: other' WHERE repository = 'web' AND image_digest = '" + d1 + "' AND scan_type = 'ENHANCED'"},
		{"a scan made basic", "UPDATE image_scans SET scan_type = 'BASIC' WHERE repository = 'app' AND image_digest = '" + d4 + "' AND scan_type = 'ENHANCED'"},
		{"a scan moved to another image", "UPDATE image_scans SET image_digest = '" + d4 + "' WHERE repository = 'app' AND image_digest = '" + d2 + "' AND scan_type = 'ENHANCED'"},
	} {
		if _, err := db.write.ExecContext(ctx, w.sql); err != nil {
			t.Fatalf("%s: %v", w.step, err)
		}
		check(w.step)
	}
}

// TestImageCoverageBackfilled: migration 0042 fills image_coverage from the images stored before
// it.
func TestImageCoverageBackfilled(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 41)
	for _, q := range []string{
		`INSERT INTO repositories(name, created_at) VALUES ('app', 1)`,
		`INSERT INTO manifests(repository, digest, media_type, config_media_type, size, content, pushed_at, last_pulled_at) VALUES
			('app', 'sha256:1', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.config.v1+json', 1, x'00', 10, 20),
			('app', 'sha256:2', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.container.image.v1+json', 1, x'00', 11, 0),
			('app', 'sha256:3', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.config.v1+json', 1, x'00', 12, 0),
			('app', 'sha256:4', 'application/vnd.oci.image.index.v1+json', '', 1, x'00', 13, 0)`,
		`INSERT INTO image_inventories(id, image_digest, mode, os, package_count, inventory, created_at) VALUES
			(7, 'sha256:1', 'ENHANCED', '', 0, x'00', 1), (8, 'sha256:2', 'ENHANCED', 'Debian:12', 4, x'00', 1)`,
		`INSERT INTO image_scans(repository, image_digest, scan_type, status, description, inventory_id, updated_at) VALUES
			('app', 'sha256:1', 'ENHANCED', 'ACTIVE', '', 7, 1),
			('app', 'sha256:2', 'ENHANCED', 'FAILED', 'UnsupportedImageError: a very long description past the head', 8, 1),
			('app', 'sha256:3', 'BASIC', 'COMPLETE', '', NULL, 1)`,
	} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db := reopen()
	rows, err := queryStrings(ctx, db.Reader(), "SELECT "+coverageColumns+" FROM image_coverage ORDER BY repository, digest")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"app sha256:1 10 20 ACTIVE  1",
		"app sha256:2 11 0 FAILED UnsupportedImageError: a very lo 0",
		"app sha256:3 12 0 - - 0",
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("image_coverage after the migration\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	checkCoverage(t, db, time.UnixMilli(15), "migrated")
}

// TestCoverageCountsRefusesLongPrefix: image_coverage keeps 32 characters of a description; a
// longer prefix cannot be decided from them.
func TestCoverageCountsRefusesLongPrefix(t *testing.T) {
	db := openTest(t)
	if _, err := db.CoverageCounts(context.Background(), findings.CoverageCountQuery{FailurePrefix: strings.Repeat("é", 33)}); err == nil {
		t.Fatal("CoverageCounts took a prefix of 33 characters")
	}
	if _, err := db.CoverageCounts(context.Background(), findings.CoverageCountQuery{FailurePrefix: strings.Repeat("é", 32)}); err != nil {
		t.Fatalf("a prefix of 32 characters (64 bytes): %v", err)
	}
}

// BenchmarkImageWrites is the write cost of image_coverage's triggers: a push, its scan pending,
// its inventory, its scan done and a pull, each its own transaction as in the registry, with the
// triggers and with them dropped.
func BenchmarkImageWrites(b *testing.B) {
	for _, kept := range []bool{true, false} {
		name := "image_coverage kept"
		if !kept {
			name = "without its triggers"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, filepath.Join(b.TempDir(), "meta.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if !kept {
				triggers, err := queryStrings(ctx, db.Reader(), "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'image_coverage_%'")
				if err != nil || len(triggers) == 0 {
					b.Fatalf("triggers %v (%v)", triggers, err)
				}
				for _, tr := range triggers {
					if _, err := db.write.ExecContext(ctx, "DROP TRIGGER "+tr); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := db.CreateRepository(ctx, store.Repository{Name: "app"}); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			b.ResetTimer()
			for i := range b.N {
				d := fakeDigest(fmt.Sprintf("%x", i+1))
				m := store.Manifest{Repository: "app", Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
					ConfigMediaType: "application/vnd.oci.image.config.v1+json", Size: 10, Content: []byte("{}")}
				if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{}); err != nil {
					b.Fatal(err)
				}
				if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: d, ScanType: "ENHANCED", Status: "PENDING", UpdatedAt: now}); err != nil {
					b.Fatal(err)
				}
				inv, err := db.PutImageInventory(ctx, d, "ENHANCED", "fp", "Debian:12", nil, 5, []byte("x"), nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: d, ScanType: "ENHANCED", Status: "ACTIVE",
					Description: "Continuous scan is selected for the image.", InventoryID: inv, CompletedAt: now, UpdatedAt: now}); err != nil {
					b.Fatal(err)
				}
				if err := db.MarkPulled(ctx, m, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
