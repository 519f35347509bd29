package metamigrate_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store/metamigrate"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
)

// BenchmarkCopyBatches copies a store of 20,000 findings (each with a 1 KB detail) into
// PostgreSQL with several batch sizes, reporting rows copied per second and the largest Go
// heap seen after a batch: what the batch size costs in speed, and that memory does not grow
// with the table.
//
//	go test -run '^$' -bench CopyBatches -benchtime 3x ./internal/store/metamigrate
func BenchmarkCopyBatches(b *testing.B) {
	const findings = 20000
	ctx := context.Background()
	lite, p := stores(b, pgtest.New(b))
	exec(b, lite,
		`INSERT INTO repositories(name, created_at) VALUES ('app', 1)`,
		`INSERT INTO image_scans(repository, image_digest, scan_type, status, updated_at, image_facts) VALUES ('app', 'sha256:aa', 'ENHANCED', 'COMPLETE', 4, '{}')`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint, first_observed_at, last_observed_at, updated_at, suppressed)
			SELECT 'app', 'sha256:aa', 'ENHANCED', 'CVE-' || i, 'arn:f/' || i, 'ACTIVE', 'HIGH', 7.5, 'fp', 5, 5, 5, 0 FROM n`, findings),
		`INSERT INTO finding_texts(text) VALUES ('"title":"x"')`,
		`INSERT INTO finding_details(finding_id, head_id, tail_id, detail) SELECT id, 1, 1, '"' || hex(randomblob(512)) || '"' FROM findings`,
	)
	for _, batch := range []int{500, metamigrate.DefaultBatchRows, 50000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var peak uint64
			var rows int64
			var took time.Duration
			for range b.N {
				b.StopTimer()
				if _, err := p.Pool().Exec(ctx, `TRUNCATE settings, repositories, image_scans, findings, finding_texts, finding_package_sets, finding_set_packages, image_finding_counts CASCADE`); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				b.StartTimer()
				start := time.Now()
				reps, err := metamigrate.Copy(ctx, lite, p.Pool(), metamigrate.Options{BatchRows: batch, AfterBatch: func(string, int64) error {
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					peak = max(peak, m.HeapAlloc)
					return nil
				}})
				took += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range reps {
					rows += r.Copied
				}
			}
			b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
