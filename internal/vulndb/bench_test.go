package vulndb_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

// BenchmarkImportCorpus imports the whole shared OSV corpus (osv/ of the shared test data,
// too large for the repository) into a fresh store per iteration and reports records per
// second and the process's peak RSS. The fuller report (queries too) is
// `go run ./internal/vulndb/cmd/vulndb-bench`.
func BenchmarkImportCorpus(b *testing.B) {
	corpus := testfiles.Shared(b, "osv")
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
