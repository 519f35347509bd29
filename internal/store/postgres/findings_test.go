package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/suppression"
)

// testFindingStorage checks what the conformance suite cannot see: the per-image counts the
// trigger keeps match the findings through writes, a status change, a suppression rule and a
// deletion; details in the scanner's shape are stored in parts, their texts once, and read back
// byte for byte; and a deleted image leaves no detail, package or count row behind.
func testFindingStorage(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	db, _, count := openWithConn(t, pg)
	// checkCounts compares the kept counts with the findings counted afresh.
	checkCounts := func(step string) {
		t.Helper()
		if n := count(`SELECT count(*) FROM (
			(SELECT repository, image_digest, scan_type, n_all, n_critical, n_high, n_medium, n_low, n_informational, n_undefined FROM image_finding_counts
			 EXCEPT SELECT repository, image_digest, scan_type, count(*), count(*) FILTER (WHERE severity = 'CRITICAL'),
				count(*) FILTER (WHERE severity = 'HIGH'), count(*) FILTER (WHERE severity = 'MEDIUM'), count(*) FILTER (WHERE severity = 'LOW'),
				count(*) FILTER (WHERE severity = 'INFORMATIONAL'),
				count(*) FILTER (WHERE severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'))
			 FROM findings WHERE status = 'ACTIVE' AND NOT suppressed GROUP BY 1, 2, 3)
			UNION ALL
			(SELECT repository, image_digest, scan_type, count(*), 0, 0, 0, 0, 0, 0 FROM findings WHERE status = 'ACTIVE' AND NOT suppressed
			 GROUP BY 1, 2, 3 EXCEPT SELECT repository, image_digest, scan_type, n_all, 0, 0, 0, 0, 0, 0 FROM image_finding_counts)) d`); n != 0 {
			t.Errorf("%s: %d count rows differ from the findings", step, n)
		}
	}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	info := scanning.ImageInfo{Architecture: "amd64"}
	var digests []string
	details := map[string][]byte{}
	for i, repo := range []string{"a", "b"} {
		dgst := fmt.Sprintf("sha256:%064d", i+1)
		digests = append(digests, dgst)
		m := store.Manifest{Repository: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, []string{"v1"}, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		var fs []store.Finding
		for j, sev := range []string{"CRITICAL", "HIGH", "HIGH", "UNDEFINED"} {
			id := fmt.Sprintf("CVE-2026-%d", j)
			detail, err := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: id, Title: id + " text", Severity: sev,
				Packages: []match.VulnerablePackage{{Name: "p" + repo, Version: "1", Ecosystem: "npm", FixedInVersion: "2"}}}, Image: info})
			if err != nil {
				t.Fatal(err)
			}
			details[repo+"/"+id] = detail
			fs = append(fs, store.Finding{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: id, ARN: repo + id,
				Status: "ACTIVE", Severity: sev, Fingerprint: id, Detail: detail, FirstObservedAt: t0, LastObservedAt: t0, UpdatedAt: t0})
		}
		err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced}},
			func(store.ScanState) (store.ScanUpdate, error) {
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}, Findings: fs}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkCounts("written")
	if n := count("SELECT count(*) FROM finding_details WHERE head_id IS NULL"); n != 0 {
		t.Errorf("%d details of the scanner's shape stored whole", n)
	}
	// Four vulnerability texts, one image text (the same facts in both images).
	if n := count("SELECT count(*) FROM finding_texts"); n != 5 {
		t.Errorf("%d texts stored, want 5", n)
	}
	got, err := db.Findings(ctx, "a", digests[0], policy.ScanTypeEnhanced)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		if string(f.Detail) != string(details["a/"+f.VulnerabilityID]) {
			t.Errorf("%s: detail read back %s, written %s", f.VulnerabilityID, f.Detail, details["a/"+f.VulnerabilityID])
		}
	}

	// One finding closes, another changes severity.
	err = db.ApplyScans(ctx, []store.ScanTarget{{Repository: "a", Digest: digests[0], ScanType: policy.ScanTypeEnhanced}},
		func(st store.ScanState) (store.ScanUpdate, error) {
			fs := slices.Clone(st.Findings) // the store compares with what it handed over
			fs[0].Status, fs[1].Severity = "CLOSED", "LOW"
			return store.ScanUpdate{Findings: fs[:2]}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts("closed and changed")
	if n := count("SELECT n_all FROM image_finding_counts WHERE repository = 'a'"); n != 3 {
		t.Errorf("image a counts %d ACTIVE findings, want 3", n)
	}

	// A rule suppresses the HIGH findings of b.
	rule := suppression.Rule{ARN: "arn:r", Name: "r", Action: suppression.Suppress, Criteria: findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{
		findings.ECRImageRepositoryName: {{Comparison: findings.Equals, Value: "b"}}, findings.Severity: {{Comparison: findings.Equals, Value: "HIGH"}}}}}
	if err := db.CreateFilter(ctx, rule, nil); err != nil {
		t.Fatal(err)
	}
	checkCounts("suppressed")
	if n := count("SELECT n_high FROM image_finding_counts WHERE repository = 'b'"); n != 0 {
		t.Errorf("image b counts %d HIGH findings with them suppressed", n)
	}

	// Deleting an image, then the other's repository, leaves no row of theirs behind.
	if _, err := db.DeleteManifest(ctx, "a", digests[0], true); err != nil {
		t.Fatal(err)
	}
	checkCounts("image deleted")
	if _, err := db.DeleteRepository(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"findings", "finding_details", "finding_packages", "image_finding_counts"} {
		if n := count("SELECT count(*) FROM " + table); n != 0 {
			t.Errorf("%s holds %d rows after the images were deleted", table, n)
		}
	}
}

// testConcurrentApplyScans: nodes writing findings of one image at once each read what is
// stored and add one finding; the serializable transactions that collide run again, so every
// finding lands once and the counts agree with them.
func testConcurrentApplyScans(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	url := pg.Schema(t)
	const nodes = 4
	dbs := make([]*postgres.DB, nodes)
	for i := range dbs {
		db, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	dgst := fmt.Sprintf("sha256:%064d", 7)
	m := store.Manifest{Repository: "app", Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := dbs[0].PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	target := store.ScanTarget{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	errs := make(chan error, nodes)
	for i, db := range dbs {
		go func() {
			id := fmt.Sprintf("CVE-2026-%d", i)
			errs <- db.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
				for _, f := range st.Findings {
					if f.VulnerabilityID == id {
						return store.ScanUpdate{}, fmt.Errorf("%s already written: a committed update ran again", id)
					}
				}
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}, Findings: []store.Finding{{
					Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: id, ARN: id, Status: "ACTIVE",
					Severity: "HIGH", Fingerprint: id, Detail: []byte(`{"n":1}`), FirstObservedAt: t0, LastObservedAt: t0, UpdatedAt: t0}},
					Usage: []store.Usage{{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced, Kind: "RESCAN", At: t0}}}, nil
			})
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	fs, err := dbs[0].Findings(ctx, "app", dgst, policy.ScanTypeEnhanced)
	if err != nil || len(fs) != nodes {
		t.Fatalf("%d findings (%v), want %d", len(fs), err, nodes)
	}
	usage, err := dbs[0].UsageSince(ctx, t0)
	if err != nil || len(usage) != nodes {
		t.Fatalf("%d usage records (%v), want %d: a retried update's usage is written once", len(usage), err, nodes)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var all, high int
	if err := conn.QueryRow(ctx, "SELECT n_all, n_high FROM image_finding_counts WHERE repository = 'app'").Scan(&all, &high); err != nil || all != nodes || high != nodes {
		t.Fatalf("counts %d all, %d high (%v), want %d", all, high, err, nodes)
	}
}

// BenchmarkReevaluate measures a re-evaluation's transaction on PostgreSQL: 100 images of 20
// findings each, all observed again (each image's findings_observed_at moves) and one finding
// of each changed. ns/op is one transaction of the 100 images; ns/image is per image.
//
//	go test ./internal/store/postgres/ -run '^$' -bench Reevaluate -benchtime 5x
func BenchmarkReevaluate(b *testing.B) {
	ctx := context.Background()
	pg := pgtest.New(b)
	db, err := postgres.Open(ctx, pg.Schema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const images, perImage = 100, 20
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var targets []store.ScanTarget
	for i := range images {
		dgst := fmt.Sprintf("sha256:%064d", i)
		m := store.Manifest{Repository: "bench", Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			b.Fatal(err)
		}
		targets = append(targets, store.ScanTarget{Repository: "bench", Digest: dgst, ScanType: policy.ScanTypeEnhanced})
	}
	detail := func(id string, n int) []byte {
		d, _ := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: id, Title: id, Severity: "HIGH",
			Packages: []match.VulnerablePackage{{Name: "p", Version: fmt.Sprint(n), Ecosystem: "npm"}}}})
		return d
	}
	err = db.ApplyScans(ctx, targets, func(st store.ScanState) (store.ScanUpdate, error) {
		var fs []store.Finding
		for j := range perImage {
			id := fmt.Sprintf("CVE-2026-%d", j)
			fs = append(fs, store.Finding{Repository: st.Target.Repository, Digest: st.Target.Digest, ScanType: st.Target.ScanType, VulnerabilityID: id,
				ARN: st.Target.Digest + id, Status: "ACTIVE", Severity: "HIGH", Fingerprint: "0", Detail: detail(id, 0), FirstObservedAt: t0, LastObservedAt: t0, UpdatedAt: t0})
		}
		return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}, Findings: fs}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for n := range b.N {
		at := t0.Add(time.Duration(n+1) * time.Minute)
		err := db.ApplyScans(ctx, targets, func(st store.ScanState) (store.ScanUpdate, error) {
			fs := slices.Clone(st.Findings)
			for j := range fs {
				fs[j].LastObservedAt = at
			}
			fs[0].Fingerprint, fs[0].Detail, fs[0].UpdatedAt = fmt.Sprint(n+1), detail(fs[0].VulnerabilityID, n+1), at
			return store.ScanUpdate{Findings: fs}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*images), "ns/image")
}

// testFindingPackageSets: images holding the same vulnerable packages, in layers of their own,
// store the packages part of their details (without the layer), and its package rows, once;
// every detail reads back byte for byte (those of odd shapes too, stored whole); package
// filters (by name, by layer) find the findings of each image holding the package; a finding
// rewritten with other packages reads its new ones.
func testFindingPackageSets(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	db, _, count := openWithConn(t, pg)
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	scanned := func(id string, pkgs ...match.VulnerablePackage) []byte {
		d, err := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: id, Title: id, Severity: "HIGH", Packages: pkgs},
			Image: scanning.ImageInfo{Architecture: "amd64"}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	openssl := match.VulnerablePackage{Name: "openssl", Version: "3.0.1", Ecosystem: "Debian:12", Layer: "sha256:l1", CreatedBy: "RUN apt-get install", FixedInVersion: "3.0.2"}
	zlib := match.VulnerablePackage{Name: "zlib", Version: "1.2", Ecosystem: "Debian:12", Layer: "sha256:l2", CreatedBy: `RUN "x"`}
	inLayer := func(p match.VulnerablePackage, layer, createdBy string) match.VulnerablePackage {
		p.Layer, p.CreatedBy = layer, createdBy
		return p
	}
	// Per image, vulnerability id -> detail. Images a and b hold the same packages, in layers
	// of their own but for b's zlib of CVE-1 (a package's layer is stored apart when it is
	// that of the finding's first package). e and f: two packages in one layer, the second
	// with another history step (so not the finding's layer text), the first in e's layer or
	// f's.
	images := map[string]map[string][]byte{
		"a": {"CVE-1": scanned("CVE-1", openssl, zlib), "CVE-2": scanned("CVE-2", zlib)},
		"b": {"CVE-1": scanned("CVE-1", inLayer(openssl, "sha256:b1", "RUN b"), zlib), "CVE-2": scanned("CVE-2", inLayer(zlib, "sha256:b2", ""))},
		"e": {"CVE-4": scanned("CVE-4", inLayer(openssl, "sha256:l5", "one"), inLayer(zlib, "sha256:l5", "two"))},
		"f": {"CVE-4": scanned("CVE-4", inLayer(openssl, "sha256:l6", "one"), inLayer(zlib, "sha256:l5", "two"))},
		"c": {
			"CVE-1": []byte(`{"finding":{"vulnerablePackages":[{"name":"odd"}] },"image":{}}`), // a space: not split
			"CVE-2": []byte(`{"n":1}`),
			"CVE-3": []byte(`{"finding":{"title":"x","vulnerablePackages":[{"name":"zlib"}]},"image":{"architecture":"arm64"}}`),
		},
	}
	write := func(repo string) {
		t.Helper()
		dgst := "sha256:" + repo
		m := store.Manifest{Repository: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		var fs []store.Finding
		for id, d := range images[repo] {
			fs = append(fs, store.Finding{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: id, ARN: repo + id,
				Status: "ACTIVE", Severity: "HIGH", Fingerprint: string(d), Detail: d, FirstObservedAt: t0, LastObservedAt: t0, UpdatedAt: t0})
		}
		err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced}},
			func(store.ScanState) (store.ScanUpdate, error) {
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}, Findings: fs}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string) {
		t.Helper()
		for repo, want := range images {
			got, err := db.Findings(ctx, repo, "sha256:"+repo, policy.ScanTypeEnhanced)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: image %s has %d findings, want %d", step, repo, len(got), len(want))
			}
			for _, f := range got {
				if string(f.Detail) != string(want[f.VulnerabilityID]) {
					t.Errorf("%s: %s/%s read back %s, written %s", step, repo, f.VulnerabilityID, f.Detail, want[f.VulnerabilityID])
				}
			}
		}
	}
	for _, repo := range []string{"a", "b", "c", "e", "f"} {
		write(repo)
	}
	check("written")
	// Sets: a's and b's two packages parts, c's three details (two stored whole), e's and f's one.
	if n := count("SELECT count(*) FROM finding_package_sets"); n != 6 {
		t.Errorf("%d package sets, want 6", n)
	}
	if n := count("SELECT count(*) FROM finding_package_sets WHERE whole"); n != 2 {
		t.Errorf("%d details stored whole, want 2", n)
	}
	// Layers: l1, l2 (a), b1, b2 (b), l5 with "one" (e), l6 (f).
	if n := count("SELECT count(*) FROM finding_layers"); n != 6 {
		t.Errorf("%d layer texts, want 6", n)
	}
	// Rows: openssl and zlib, zlib, odd, none, zlib, openssl and zlib.
	if n := count("SELECT count(*) FROM finding_set_packages"); n != 7 {
		t.Errorf("%d package rows stored, want 7", n)
	}
	if n := count("SELECT count(*) FROM finding_packages"); n != 12 {
		t.Errorf("%d package rows read, want 12 (3 for each of a and b, 2 for c, e and f)", n)
	}
	query := func(pf findings.PackageFilter) []string {
		t.Helper()
		ls, err := db.QueryFindings(ctx, findings.Query{Limit: 100, Criteria: findings.Criteria{Packages: []findings.PackageFilter{pf}}})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range ls {
			out = append(out, l.Finding.Repository+"/"+l.Finding.VulnerabilityID)
		}
		slices.Sort(out)
		return out
	}
	byPackage := func(name string) []string {
		return query(findings.PackageFilter{Name: &findings.StringFilter{Comparison: findings.Equals, Value: name}})
	}
	for _, tc := range []struct {
		name, layer string
		want        []string
	}{
		{name: "openssl", want: []string{"a/CVE-1", "b/CVE-1", "e/CVE-4", "f/CVE-4"}},
		{name: "zlib", want: []string{"a/CVE-1", "a/CVE-2", "b/CVE-1", "b/CVE-2", "c/CVE-3", "e/CVE-4", "f/CVE-4"}},
		{name: "odd", want: []string{"c/CVE-1"}},
		{name: "none"},
		{layer: "sha256:l1", want: []string{"a/CVE-1"}},
		{layer: "sha256:l2", want: []string{"a/CVE-1", "a/CVE-2", "b/CVE-1"}},
		{layer: "sha256:b2", want: []string{"b/CVE-2"}},
		{layer: "sha256:l5", want: []string{"e/CVE-4", "f/CVE-4"}},
		{layer: "sha256:l6", want: []string{"f/CVE-4"}},
		{name: "openssl", layer: "sha256:l5", want: []string{"e/CVE-4"}},
		{name: "zlib", layer: "sha256:l6"},
	} {
		pf := findings.PackageFilter{}
		if tc.name != "" {
			pf.Name = &findings.StringFilter{Comparison: findings.Equals, Value: tc.name}
		}
		if tc.layer != "" {
			pf.SourceLayerHash = &findings.StringFilter{Comparison: findings.Equals, Value: tc.layer}
		}
		if got := query(pf); !slices.Equal(got, tc.want) {
			t.Errorf("package %q in layer %q: findings %q, want %q", tc.name, tc.layer, got, tc.want)
		}
	}

	// b's CVE-1 is fixed in zlib only: it gets a's CVE-2 packages part, a keeps its own.
	images["b"]["CVE-1"] = scanned("CVE-1", zlib)
	write("b")
	check("rewritten")
	if got, want := byPackage("openssl"), []string{"a/CVE-1", "e/CVE-4", "f/CVE-4"}; !slices.Equal(got, want) {
		t.Errorf("package openssl after the rewrite: findings %q, want %q", got, want)
	}
	if n := count("SELECT count(*) FROM finding_package_sets"); n != 6 {
		t.Errorf("%d package sets after the rewrite, want 6 (the new packages part is that of CVE-2)", n)
	}
}
