package vulndb_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/lading-registry/lading/internal/vulndb"
)

// corpusPath is the shared OSV corpus: LADING_OSV_CORPUS, or ../shared/testdata/osv from
// the repository root.
func corpusPath(b *testing.B) string {
	p := os.Getenv("LADING_OSV_CORPUS")
	if p == "" {
		p = filepath.Join("..", "..", "..", "shared", "testdata", "osv")
	}
	if _, err := os.Stat(p); err != nil {
		b.Fatalf("OSV corpus: %v (set LADING_OSV_CORPUS)", err)
	}
	return p
}

// BenchmarkImportCorpus imports the whole shared corpus into a fresh store per iteration
// and reports records per second and the process's peak RSS. The fuller report (queries
// too) is `go run ./internal/vulndb/cmd/vulndb-bench`.
func BenchmarkImportCorpus(b *testing.B) {
	corpus := corpusPath(b)
	var records int
	for b.Loop() {
		b.StopTimer()
		st := openStore(b, filepath.Join(b.TempDir(), "meta.db"))
		db := vulndb.New(st, vulndb.Options{Logger: quietLogger()})
		b.StartTimer()
		res, err := db.Import(context.Background(), corpus)
		if err != nil {
			b.Fatal(err)
		}
		records += res.Added
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}
