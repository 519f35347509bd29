package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

// setupResult is the prepared store and the advisory to import.
type setupResult struct {
	Flags        string              `json:"flags"`
	VulnID       string              `json:"vulnId"`
	Key          advisory.PackageKey `json:"key"`
	LastAffected string              `json:"lastAffected"`
	Holders      int                 `json:"holders"`
	Advisory     json.RawMessage     `json:"advisory"`
	Stats        map[string]float64  `json:"stats"`

	vulnID, advisoryPath, lastAffected string
	key                                advisory.PackageKey
	holders                            int
}

func (s *setupResult) fill(dir string) error {
	s.vulnID, s.key, s.lastAffected, s.holders = s.VulnID, s.Key, s.LastAffected, s.Holders
	s.advisoryPath = filepath.Join(dir, s.VulnID+".json")
	return os.WriteFile(s.advisoryPath, s.Advisory, 0o644)
}

// setupFormat changes whenever the generator or the loader changes what a setup writes, so
// that a cached store of an older format is not reused.
const setupFormat = 18

func flagsKey(cfg config) string {
	g := cfg.gen
	return fmt.Sprintf("v%d images=%d bases=%d repos=%d packages=%d-%d fresh=%g seed=%d affected=%g",
		setupFormat, g.images, g.bases, g.repos, g.minPkgs, g.maxPkgs, g.fresh, g.seed, cfg.affected)
}

// setupStore writes the store at dbPath (or copies it from the cache) and returns the
// advisory to import.
func setupStore(ctx context.Context, cfg config, dbPath string, w io.Writer) (*setupResult, error) {
	dir := filepath.Dir(dbPath)
	if cfg.cache != "" {
		raw, err := os.ReadFile(filepath.Join(cfg.cache, "setup.json"))
		if err == nil {
			var s setupResult
			if err := json.Unmarshal(raw, &s); err == nil && s.Flags == flagsKey(cfg) {
				start := time.Now()
				if err := copyFile(filepath.Join(cfg.cache, "lading.db"), dbPath, dbPath); err != nil {
					return nil, err
				}
				fmt.Fprintf(w, "store copied from %s in %s (set up earlier with the same flags)\n", cfg.cache, time.Since(start).Round(time.Millisecond))
				printStats(w, s.Stats)
				return &s, s.fill(dir)
			}
		}
	}
	s, err := buildStore(ctx, cfg, dbPath, w)
	if err != nil {
		return nil, err
	}
	if err := s.fill(dir); err != nil {
		return nil, err
	}
	if cfg.cache != "" {
		if err := os.MkdirAll(cfg.cache, 0o755); err != nil {
			return nil, err
		}
		if err := copyFile(dbPath, filepath.Join(cfg.cache, "lading.db"), dbPath); err != nil {
			return nil, err
		}
		raw, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(cfg.cache, "setup.json"), raw, 0o644); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// copyFile copies a store to or from the cache. Then, so that the measured store (measured,
// one of the two) is as right after a setup: both are written back (the kernel's writeback of
// 19 GiB would otherwise run during the measurement), the other one's pages are dropped from
// the page cache, and the measured one is read once.
func copyFile(from, to, measured string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	for _, path := range []string{from, to} {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		if err == nil && path != measured {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		if err == nil && path == measured {
			_, err = io.Copy(io.Discard, f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func printStats(w io.Writer, st map[string]float64) {
	fmt.Fprintf(w, "store: %.0f images in %.0f repositories, %.0f packages (%.0f per image), %.0f package keys, %.0f index rows, %.0f findings (%.1f per image), inventories %.1f MiB compressed (headers and %.0f distinct parts)\n",
		st["images"], st["repos"], st["packages"], st["packages"]/st["images"], st["keys"], st["indexRows"], st["findings"], st["findings"]/st["images"], st["inventoryMiB"], st["inventoryParts"])
}

func buildStore(ctx context.Context, cfg config, dbPath string, w io.Writer) (*setupResult, error) {
	// The shared corpus is too large for the repository; a cached store does without it.
	root, err := testfiles.ModuleRoot(".")
	if err != nil {
		return nil, err
	}
	osvDir, err := testfiles.SharedDir(root, "osv")
	if err != nil {
		return nil, err
	}
	artifacts, err := testfiles.SharedDir(root, "artifacts")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := loadCorpus(osvDir, artifacts)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "corpus read in %s:", time.Since(start).Round(time.Millisecond))
	for _, rel := range osReleases {
		fmt.Fprintf(w, " %s %d", rel.eco, len(c.os[rel.eco]))
	}
	for _, l := range langEcosystems {
		fmt.Fprintf(w, ", %s %d", l.eco, len(c.lang[l.eco]))
	}
	fmt.Fprintln(w, " packages")

	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	// Closed before the images are loaded (openLoadConn), and on an error before.
	closeDB := true
	defer func() {
		if closeDB {
			_ = db.Close()
		}
	}()
	// A large page cache for the load only (the measurement reopens the store with defaults).
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "PRAGMA cache_size = -2000000")
		return err
	}); err != nil {
		return nil, err
	}
	start = time.Now()
	vdb := vulndb.New(db, vulndb.Options{Logger: slog.New(slog.DiscardHandler)})
	res, err := vdb.Import(ctx, osvDir)
	if err != nil {
		return nil, err
	}
	idx, err := vdb.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "advisory corpus imported in %s: %d records, %d packages\n", time.Since(start).Round(time.Millisecond), res.Added, idx.Stats().Packages)

	c.markSafe(idx)
	// A scan is stored a minute after its push (prepare): with the clock two minutes back,
	// every time the store holds is before the measurement, whose checks count the rows written
	// since it started (an image pushed in the last seconds was counted as rewritten).
	cfg.gen.now = time.Now().Add(-2 * time.Minute)
	// A fixed clock makes two setups with the same seed write the same bytes (to compare loaders).
	if v := os.Getenv("LADING_BENCH_NOW"); v != "" {
		if cfg.gen.now, err = time.Parse(time.RFC3339, v); err != nil {
			return nil, fmt.Errorf("LADING_BENCH_NOW: %w", err)
		}
	}
	// Pushed within the last week: inside the default 14-day rescan window, also when a cached
	// store is measured again days later.
	cfg.gen.window = 7 * 24 * time.Hour
	g := newGenerator(cfg.gen, c)
	l := newLoader(idx)
	l.memProfile = cfg.setupMemProfile
	// The load allocates fast (prepared images, statement arguments) and keeps little: fewer
	// collections for some more memory.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	start = time.Now()
	last := time.Now()
	if err := l.createRepositories(ctx, db, g); err != nil {
		return nil, err
	}
	// The loader's connection writes the file alone (openLoadConn), then the store is opened
	// again for the policy.
	closeDB = false
	if err := db.Close(); err != nil {
		return nil, err
	}
	load, err := openLoadConn(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	l.load = load
	if err := l.run(ctx, g, func(done int) {
		if time.Since(last) > 15*time.Second {
			last = time.Now()
			fmt.Fprintf(w, "  %d images written (%s)\n", done, time.Since(start).Round(time.Second))
		}
	}); err != nil {
		_ = load.Close()
		return nil, err
	}
	if err := closeLoadConn(ctx, load); err != nil {
		return nil, err
	}
	if db, err = sqlite.Open(ctx, dbPath); err != nil {
		return nil, err
	}
	if err := db.PutScanningPolicy(ctx, policyContinuous()); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "images written in %s\n", time.Since(start).Round(time.Millisecond))
	s := &setupResult{Flags: flagsKey(cfg), Stats: map[string]float64{
		"images": float64(l.stats.images), "repos": float64(l.stats.repos), "packages": float64(l.stats.packages),
		"keys": float64(l.stats.keys), "indexRows": float64(l.stats.indexRows), "findings": float64(l.stats.findings),
		"inventoryMiB": float64(l.stats.inventoryBytes) / (1 << 20), "inventoryParts": float64(l.stats.inventoryParts)}}
	printStats(w, s.Stats)
	fmt.Fprintf(w, "findings made by scanning.Snapshot and split: %d of %d (the others from the template of an image before in the repository)\n",
		l.detailsSplit.Load(), l.detailsSeen.Load())
	if err := chooseAdvisory(s, c, l.stats.holders, int(float64(cfg.gen.images)*cfg.affected+0.5)); err != nil {
		return nil, err
	}
	runtime.GC()
	return s, nil
}

// chooseAdvisory writes a new advisory for the package held by the number of images closest
// to want, affecting every version the data names for it (so every holder is affected).
func chooseAdvisory(s *setupResult, c *corpus, holders map[advisory.PackageKey]int, want int) error {
	var best advisory.PackageKey
	bestDiff := -1
	for k, n := range holders {
		d := n - want
		if d < 0 {
			d = -d
		}
		if bestDiff < 0 || d < bestDiff || (d == bestDiff && cmp.Or(cmp.Compare(k.Ecosystem, best.Ecosystem), cmp.Compare(k.Name, best.Name)) < 0) {
			best, bestDiff = k, d
		}
	}
	var name, last string
	for _, pools := range []map[string][]*pkgDef{c.os, c.lang} {
		for _, d := range pools[best.Ecosystem] {
			if advisory.MakeKey(d.eco, d.name) != best {
				continue
			}
			v := d.versions[len(d.versions)-1]
			if c, err := advisory.CompareVersions(d.eco, v, last); last == "" || (err == nil && c > 0) {
				name, last = d.name, v
			}
		}
	}
	if name == "" {
		return fmt.Errorf("no package definition for %v", best)
	}
	s.VulnID, s.Key, s.LastAffected, s.Holders = "x_LADING-BENCH-0001", best, last, holders[best]
	now := time.Now().UTC().Format(time.RFC3339)
	rec := map[string]any{
		"schema_version": "1.6.0",
		"id":             s.VulnID,
		"published":      now,
		"modified":       now,
		"summary":        "Benchmark advisory: remote code execution in " + name,
		"details":        "A new advisory written by bench/continuous. Every version of " + name + " up to " + last + " is affected; no fix is available yet.",
		"severity":       []map[string]string{{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
		"affected": []map[string]any{{
			"package": map[string]string{"ecosystem": best.Ecosystem, "name": name},
			"ranges":  []map[string]any{{"type": "ECOSYSTEM", "events": []map[string]string{{"introduced": "0"}, {"last_affected": last}}}},
		}},
		"references": []map[string]string{{"type": "ADVISORY", "url": "https://example.invalid/advisories/" + s.VulnID}},
	}
	raw, err := json.MarshalIndent(rec, "", "  ")
	s.Advisory = raw
	return err
}
