package vulndb_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

// How `lading db import` and `lading db query` use the package.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "lading.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	db := vulndb.New(store, vulndb.Options{Logger: slog.New(slog.DiscardHandler)})

	// Records as OSV publishes them: <Ecosystem>/all.zip, here the repository's testdata/osv-mini.
	maven, err := testfiles.Dir("osv-mini", "Maven")
	if err != nil {
		log.Fatal(err)
	}
	res, err := db.Import(ctx, maven)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", res.Version, "added", res.Added, "changed packages", res.Keys)

	vs, err := db.Query(ctx, "Maven", "org.apache.logging.log4j:log4j-core", "2.14.1")
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range vs {
		fmt.Println(v.VulnerabilityID, v.Severity, *v.CVSSScore, "fixed in", v.FixedIn())
	}
	// Output:
	// version 1 added 4 changed packages [Maven/org.apache.logging.log4j:log4j-core]
	// CVE-2021-44228 CRITICAL 10 fixed in 2.15.0
	// CVE-2021-44832 MEDIUM 6.6 fixed in 2.17.1
	// CVE-2021-45046 CRITICAL 9 fixed in 2.16.0
	// CVE-2021-45105 HIGH 8.6 fixed in 2.17.0
}

// How `lading serve` keeps every node's index current and tells continuous scanning
// which packages to re-evaluate.
func ExampleWatcher() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "lading.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	quiet := slog.New(slog.DiscardHandler)

	w := vulndb.NewWatcher(store, vulndb.WatcherOptions{PollInterval: 50 * time.Millisecond, Logger: quiet})
	sub := w.Subscribe()
	go func() { _ = w.Run(ctx) }()
	<-w.Ready()

	// Elsewhere (another process, another node): an import or a sync.
	db := vulndb.New(store, vulndb.Options{Logger: quiet})
	nuget, err := testfiles.Dir("osv-mini", "NuGet")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.Import(ctx, nuget); err != nil {
		log.Fatal(err)
	}

	ch, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	vs, _ := w.Index().Affecting("NuGet", "Newtonsoft.Json", "12.0.3")
	fmt.Println("version", ch.To, "full", ch.Full, "->", vs[0].VulnerabilityID, vs[0].Severity, vs[0].FixedVersions)
	// Output:
	// version 1 full true -> GHSA-5crp-9r3c-p9vr LOW [13.0.1]
}
