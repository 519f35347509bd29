package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// preparedImage is a generated image with everything its initial scan would have stored.
// Once prepared it keeps only what the writer needs (not the packages, the history or the
// findings' whole details): up to a few thousand of them wait for the writer at a time.
type preparedImage struct {
	genImage
	packages  int                   // len(pkgs) before they were dropped
	keys      []advisory.PackageKey // its distinct package keys, until the worker counted them
	inventory []byte                // the header the image's row keeps
	parts     []store.InventoryPart // its parts, shared with the images holding the same layers
	facts     []byte                // the image facts of its scan state
	findings  []store.Finding       // without their Detail, which details holds split
	// Per finding, its detail as the store stores it and what the store's indexFinding would
	// take from it (computed here, on every core, rather than by SQL in the write path).
	details []*storedDetail
	// Per finding, its columns of finding_rows that are not the writer's ids, and the image's
	// counts of ACTIVE findings (image_finding_counts): the writer is the load's critical path.
	rows   []findingColumns
	counts [7]int64
}

// findingColumns are a finding's columns of finding_rows as sqlite's upsert writes them
// (finding_rows.go), but for the dictionary ids the writer numbers.
type findingColumns struct {
	arnPrefix                       string
	arnKey                          any
	status, severity, score, finger any
	keys                            sql.NullString // the package keys, by their finding_key_sets id
	first, lastAfter, updatedAfter  int64          // milliseconds (0055)
	fix                             any
}

// loadStats summarises the store the load wrote.
type loadStats struct {
	images, repos, packages, findings, keys, indexRows int
	inventoryBytes                                     int64 // headers and distinct parts
	inventoryParts                                     int
	holders                                            map[advisory.PackageKey]int
}

// textKey stands for a text in the loader's dictionaries: a 128-bit hash (two 64-bit maphash
// values under random seeds), so that the maps of a million images' texts, package sets and
// layers hold 16 bytes a key instead of the texts (hundreds of bytes each, GiBs in all). Two
// texts given the same key by chance would share an id; for the few million keys of a load
// that is about as likely as 2^-80.
type textKey [2]uint64

// dictKey is a key of one of finding_rows' dictionaries: the vulnerabilities (0), the ARN
// prefixes (1), the blank facts (2) and the package key sets (3).
type dictKey struct {
	dict int
	key  string
}

type dictEntry struct {
	key string
	id  int64
}

// vulnerabilityCount is a row of vulnerability_finding_counts (0034) by its key.
type vulnerabilityCount struct{ scanType, title, vulnerabilityID, aliases string }

// dayCount is a row of finding_days (0035) by its key.
type dayCount struct {
	scanType string
	day      int64
}

// loader writes generated images into the store the way scans would have left them.
// Repositories and the scanning policy go through the store's API; the per-image rows
// (manifests, references, tags, inventories, scans, findings, usage) are written with the
// store's own statements in large transactions, and the inverted index is built at the end
// in key order, because one transaction per image (as the scanner does) would take hours
// for 100,000 images. The statements mirror internal/store/sqlite (registry.go, scanning.go).
//
// What it remembers grows with the store only by fixed-size keys (textKey, part hashes) and
// one (key, part) pair per indexed package key, so a million images fit in memory: an image's
// scan target is new with the image and needs no dictionary at all.
type loader struct {
	load        *sql.DB // the per-image writes and the index (openLoadConn)
	idx         *advisory.Index
	origin      events.Origin
	fingerprint string // of the ENHANCED inventories, as the scanner records it
	seeds       [2]maphash.Seed
	parts       *scanning.PartEncoder // the bases' parts compressed once, as a scanning node does
	// Findings prepared, and those whose detail was split rather than taken from a template.
	detailsSeen, detailsSplit atomic.Int64
	// The statements that write an image's blob links, references, inventory part links,
	// findings and their details.
	blobLinks, references, partLinks, findingRows, findingDetails *rowsInsert

	keyIDs      map[advisory.PackageKey]int64
	textIDs     map[textKey]int64           // finding_texts
	setIDs      map[textKey]int64           // finding_package_sets
	dictIDs     map[dictKey]int64           // the small dictionaries of finding_rows (0045, 0053)
	dictLast    [3]dictEntry                // the last key looked up in each of the first three
	nextDict    int64                       // ids of those and of scan_targets, unique across them, which is enough
	pairs       []uint64                    // key id << 32 | part id (inventory_key_postings, 0054)
	partIDs     map[[sha256.Size]byte]int64 // inventory_parts (0050)
	factIDs     map[textKey]int64           // finding_facts by factsKey
	layers      map[textKey]int64           // finding_layers by digest
	triggers    []string                    // the definitions of the triggers dropped for the load (dropTriggers)
	lastFact    int64                       // finding_facts' largest id, as SQLite numbers a new row
	nextInv     int64
	nextFinding int64
	// What the dropped count triggers would have added up (writeCounts), merged from the
	// workers'; the images' own counts are written with each image.
	counts     *findingCounts
	stats      loadStats
	memProfile string // -setupmemprofile
}

func newLoader(idx *advisory.Index) *loader {
	return &loader{idx: idx, origin: events.Origin{Account: "123456789012", Region: "us-east-1"},
		fingerprint: inventory.Fingerprint(inventory.ModeEnhanced), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		parts:     scanning.NewPartEncoder(64 << 20),
		blobLinks: blobLinksInsert(), references: referencesInsert(), partLinks: newRowsInsert(`INSERT INTO inventory_part_links(inventory_id, part_id)`, `(?, ?)`, "", 2),
		findingRows: findingRowsInsert(), findingDetails: findingDetailsInsert(),
		keyIDs: map[advisory.PackageKey]int64{}, textIDs: map[textKey]int64{}, setIDs: map[textKey]int64{}, dictIDs: map[dictKey]int64{},
		partIDs: map[[sha256.Size]byte]int64{}, factIDs: map[textKey]int64{}, layers: map[textKey]int64{},
		counts: newFindingCounts(),
		stats:  loadStats{holders: map[advisory.PackageKey]int{}}}
}

func (l *loader) textKey(s string) textKey { return keyOfText(l.seeds, s) }

// keyOfText is the loader's key of a text, under its two seeds.
func keyOfText(seeds [2]maphash.Seed, s string) textKey {
	return textKey{maphash.String(seeds[0], s), maphash.String(seeds[1], s)}
}

func (l *loader) prepare(img genImage, affecting *affectingMemo, templates *findingTemplates, counts *findingCounts) (preparedImage, error) {
	p := preparedImage{genImage: img}
	p.keys = keysOf(img.pkgs, match.Key)
	var err error
	if p.inventory, p.parts, err = l.parts.Encode(img.base.os, img.pkgs, img.history, nil); err != nil {
		return p, err
	}
	fs, _ := match.Image(img.pkgs, affecting, img.history)
	info := scanning.ImageInfo{Architecture: "amd64", Platform: scanning.PlatformName(img.base.os)}
	if p.facts, err = json.Marshal(info); err != nil {
		return p, err
	}
	// The findings as scanning.Snapshot writes them, most from the templates of the
	// repository's images before.
	now := img.pushedAt.Add(time.Minute)
	snapshot := func(m match.Finding) (store.Finding, error) {
		fs, err := scanning.Snapshot(l.origin, img.repo, img.digest, policy.ScanTypeEnhanced, []match.Finding{m}, info, now)
		if err == nil && len(fs) != 1 {
			err = fmt.Errorf("snapshot of one finding: %d findings", len(fs))
		}
		if err != nil {
			return store.Finding{}, err
		}
		return fs[0], nil
	}
	own := make([]string, len(img.layers))
	for i, ly := range img.layers {
		own[i] = ly.digest
	}
	p.findings, p.details = make([]store.Finding, len(fs)), make([]*storedDetail, len(fs))
	p.rows = make([]findingColumns, len(fs))
	for i, m := range fs {
		if p.findings[i], p.details[i], err = templates.finding(m, img.digest, own, now, l.origin, snapshot, l.storeDetail); err != nil {
			return p, err
		}
		f := &p.findings[i]
		f.Detail = nil
		// Score and fix_available coded, the last observation and update as milliseconds after
		// the first (0055).
		prefix, key := sqlite.SplitFindingARN(f.ARN)
		first := f.FirstObservedAt.UnixMilli()
		p.rows[i] = findingColumns{arnPrefix: prefix, arnKey: key, status: sqlite.StatusColumn(f.Status),
			severity: sqlite.SeverityColumn(f.Severity), score: sqlite.ScoreColumn(f.Score), finger: sqlite.FingerprintColumn(f.Fingerprint),
			keys: sqlite.PackageKeysColumn(f.PackageKeys), first: first, lastAfter: f.LastObservedAt.UnixMilli() - first,
			updatedAfter: f.UpdatedAt.UnixMilli() - first, fix: sqlite.FixAvailableColumn(p.details[i].fix)}
		counts.add(*f, p.details[i].facts, p.details[i].fix, &p.counts)
	}
	// What the writer does not need goes now: the packages (their keys and count stay), the
	// history, the own layers' packages.
	p.packages, p.pkgs, p.history = len(p.pkgs), nil, nil
	layers := make([]layerDef, len(p.layers))
	for i, ly := range p.layers {
		layers[i] = layerDef{digest: ly.digest, size: ly.size, createdBy: ly.createdBy}
	}
	p.layers = layers
	return p, nil
}

// storeDetail splits a detail as the store would store it.
func (l *loader) storeDetail(detail []byte) (*storedDetail, error) {
	var d storedDetail
	var err error
	if d.facts, d.fix, err = sqlite.FindingColumnsOfDetail(detail); err != nil {
		return nil, err
	}
	if d.parts, err = sqlite.SplitDetailParts(detail, func(string) (string, bool, error) {
		return "", false, errors.New("a generated detail of another shape")
	}); err != nil {
		return nil, err
	}
	d.head, d.tail, d.body = l.textKey(d.parts.Head), l.textKey(d.parts.Tail), l.textKey(d.parts.Body)
	d.factsKey = factsKey(l.seeds, d.facts)
	if d.parts.Layer != "" {
		d.layer, d.layerDigest = l.textKey(d.parts.Layer), l.textKey(d.parts.LayerDigest)
	}
	return &d, nil
}

// openLoadConn opens the loader's own connection to the store at path, the only one open
// while it loads. A setup that fails is thrown away, so it writes without what protects a
// store in use: no journal (pages written once, into the file, rather than into the WAL
// and copied from there by checkpoints), no fsync (synchronous OFF), temporary tables in
// memory, no foreign key checks (the rows are written parents first, as the scanner would).
// closeLoadConn puts the file back in WAL mode.
func openLoadConn(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(OFF)", "synchronous(OFF)", "foreign_keys(OFF)", "temp_store(MEMORY)",
		"cache_size(-2000000)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open load connection: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "off" {
		_ = db.Close()
		return nil, fmt.Errorf("open load connection: journal mode %q (another connection open?): %w", mode, err)
	}
	return db, nil
}

// closeLoadConn puts the store back in WAL mode, as sqlite.Open keeps it, and closes db.
func closeLoadConn(ctx context.Context, db *sql.DB) error {
	var mode string
	err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
	if err == nil && mode != "wal" {
		err = fmt.Errorf("journal mode %q", mode)
	}
	return errors.Join(err, db.Close())
}

// loadTx runs fn in a transaction of the load connection.
func (l *loader) loadTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := l.load.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// createRepositories creates the generator's repositories through the store's API.
func (l *loader) createRepositories(ctx context.Context, db *sqlite.DB, g *generator) error {
	for ri := range g.cfg.repos {
		name := g.repoName(ri)
		if _, err := db.CreateRepository(ctx, store.Repository{Name: name}); err != nil {
			return fmt.Errorf("create repository %s: %w", name, err)
		}
	}
	l.stats.repos = g.cfg.repos
	return nil
}

// run generates and writes every image: generation, matching and encoding on all cores,
// writes on one connection in batches.
func (l *loader) run(ctx context.Context, g *generator, progress func(done int)) error {
	repos := g.cfg.repos
	per, extra := g.cfg.images/repos, g.cfg.images%repos
	// The findings' ARN and vulnerability indexes (0045) take keys in random order: they are
	// built at the end in one sorted pass, as CREATE INDEX does, not inserted into all over.
	if err := l.loadTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DROP INDEX finding_rows_arn; DROP INDEX finding_rows_vulnerability")
		return err
	}); err != nil {
		return err
	}
	if err := l.dropTriggers(ctx); err != nil {
		return err
	}
	type repoBatch struct {
		ri   int
		imgs []preparedImage
	}
	// Room for about two transactions' images (1,000 at 20 a repository), so that the workers
	// go on preparing while the writer writes.
	out := make(chan repoBatch, 50)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, runtime.GOMAXPROCS(0))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The images holding each package key, counted by each worker (the writer has enough to
	// do) and added up once every image is prepared.
	var holdersMu sync.Mutex
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holders := map[advisory.PackageKey]int{}
			affecting := newAffectingMemo(l.idx) // the worker's own: no lock on every package
			counts := newFindingCounts()
			defer func() {
				holdersMu.Lock()
				defer holdersMu.Unlock()
				for k, n := range holders {
					l.stats.holders[k] += n
				}
				l.counts.merge(counts)
			}()
			for {
				ri := int(next.Add(1) - 1)
				if ri >= repos || ctx.Err() != nil {
					return
				}
				n := per
				if ri < extra {
					n++
				}
				imgs := g.repoImages(ri, n)
				batch := make([]preparedImage, 0, len(imgs))
				templates := newFindingTemplates(l.seeds)
				for _, img := range imgs {
					p, err := l.prepare(img, affecting, templates, counts)
					if err != nil {
						errc <- err
						cancel()
						return
					}
					for _, k := range p.keys {
						holders[k]++
					}
					p.keys = nil
					batch = append(batch, p)
				}
				l.detailsSeen.Add(templates.seen)
				l.detailsSplit.Add(templates.split)
				select {
				case out <- repoBatch{ri, batch}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()

	var pending []preparedImage
	done := 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := l.write(ctx, pending); err != nil {
			return err
		}
		done += len(pending)
		progress(done)
		pending = pending[:0]
		return nil
	}
	// Batches are written in repository order whatever order the workers finish in, so that
	// a seed gives the same ids, hence the same store, from run to run.
	early := map[int][]preparedImage{}
	nextRepo := 0
	for b := range out {
		early[b.ri] = b.imgs
		for imgs, ok := early[nextRepo]; ok; imgs, ok = early[nextRepo] {
			delete(early, nextRepo)
			nextRepo++
			pending = append(pending, imgs...)
			// 500 images a transaction: more gains nothing, and each waiting image holds its
			// findings' details.
			if len(pending) >= 500 {
				if err := flush(); err != nil {
					cancel()
					return err
				}
			}
		}
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	if err := flush(); err != nil {
		return err
	}
	if l.memProfile != "" {
		if err := writeHeapProfile(l.memProfile); err != nil {
			return err
		}
	}
	// What follows sorts whole tables (the indexes built again): SQLite's temporary files on
	// disk, not in memory, for that, and its sorter's helper threads on every core (it sorts
	// and writes each run of keys on one while the table is read on another).
	for _, q := range []string{"PRAGMA temp_store = FILE", fmt.Sprintf("PRAGMA threads = %d", runtime.GOMAXPROCS(0))} {
		if _, err := l.load.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if err := l.writeCounts(ctx); err != nil {
		return err
	}
	return l.writeIndex(ctx)
}

// findingCounts are what the dropped count triggers (0053, 0055) would have written for the
// vulnerabilities and the days, added up by each worker and merged (sums, in any order).
type findingCounts struct {
	vulnerabilities map[vulnerabilityCount]*[5]int64 // all, critical, high, medium, fix available
	days            map[dayCount]*[2]int64           // opened, closed
}

func newFindingCounts() *findingCounts {
	return &findingCounts{vulnerabilities: map[vulnerabilityCount]*[5]int64{}, days: map[dayCount]*[2]int64{}}
}

// add counts a finding: the image's counts to image, the vulnerability's and the days' to c.
func (c *findingCounts) add(f store.Finding, facts sqlite.FindingFacts, fix string, image *[7]int64) {
	first := f.FirstObservedAt.UnixMilli()
	c.addDay(dayCount{f.ScanType, first / 86400000}, 0, 1)
	if f.Status == "CLOSED" {
		c.addDay(dayCount{f.ScanType, f.UpdatedAt.UnixMilli() / 86400000}, 1, 1)
	}
	if f.Status != "ACTIVE" || f.Suppressed {
		return
	}
	// The severity as the row stores it and the triggers compare it: X'01' CRITICAL to X'05'
	// INFORMATIONAL count apart, anything else (X'06' UNDEFINED, a string) as the rest.
	severity := 6
	if code, ok := sqlite.SeverityColumn(f.Severity).([]byte); ok && code[0] < 6 {
		severity = int(code[0])
	}
	image[0]++
	image[severity]++
	var n [5]int64
	n[0] = 1
	if severity <= 3 {
		n[severity] = 1
	}
	if fix == "YES" || fix == "PARTIAL" {
		n[4] = 1
	}
	c.addVulnerability(vulnerabilityCount{f.ScanType, facts.Title, f.VulnerabilityID, facts.Aliases}, n)
}

func (c *findingCounts) addVulnerability(k vulnerabilityCount, n [5]int64) {
	v := c.vulnerabilities[k]
	if v == nil {
		v = new([5]int64)
		c.vulnerabilities[k] = v
	}
	for i := range n {
		v[i] += n[i]
	}
}

func (c *findingCounts) addDay(k dayCount, i int, n int64) {
	d := c.days[k]
	if d == nil {
		d = new([2]int64)
		c.days[k] = d
	}
	d[i] += n
}

// merge adds o's counts to c's.
func (c *findingCounts) merge(o *findingCounts) {
	for k, n := range o.vulnerabilities {
		c.addVulnerability(k, *n)
	}
	for k, n := range o.days {
		c.addDay(k, 0, n[0])
		c.addDay(k, 1, n[1])
	}
}

// dropTriggers drops, keeping their definitions, the triggers that keep the per-image,
// per-vulnerability and per-day counts as findings are inserted (0045_findings_compact.sql):
// the load writes the counts once at the end (writeCounts), as the triggers' upserts were half
// the time of writing a finding; and those that keep an image's coverage row (0042, 0044) as
// its manifest, inventory and scan are inserted: the load writes the row once, as the three
// leave it, instead of inserting it and updating it and its index twice.
func (l *loader) dropTriggers(ctx context.Context) error {
	return l.loadTx(ctx, func(tx *sql.Tx) error {
		for _, name := range []string{"finding_rows_count_insert", "finding_rows_vulnerability_count_insert", "finding_rows_days_insert",
			"image_coverage_manifest_insert", "image_coverage_inventory_insert", "image_coverage_scan_insert"} {
			var def string
			if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?`, name).Scan(&def); err != nil {
				return fmt.Errorf("trigger %s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, "DROP TRIGGER "+name); err != nil {
				return err
			}
			l.triggers = append(l.triggers, def)
		}
		return nil
	})
}

// writeCounts writes what the dropped count triggers would have added up for the
// vulnerabilities and the days (the tables are empty before the load; each image's counts were
// written with it), and creates the triggers again as they were. Counted as the findings were
// written rather than grouped from them at the end: grouping a million images' findings took
// more memory than the machine has.
func (l *loader) writeCounts(ctx context.Context) error {
	return l.loadTx(ctx, func(tx *sql.Tx) error {
		for _, k := range slices.SortedFunc(maps.Keys(l.counts.vulnerabilities), func(a, b vulnerabilityCount) int {
			return cmp.Or(cmp.Compare(a.scanType, b.scanType), cmp.Compare(a.title, b.title), cmp.Compare(a.vulnerabilityID, b.vulnerabilityID), cmp.Compare(a.aliases, b.aliases))
		}) {
			c := l.counts.vulnerabilities[k]
			if _, err := tx.ExecContext(ctx, `INSERT INTO vulnerability_finding_counts(scan_type, title, vulnerability_id, aliases, n_all,
					n_critical, n_high, n_medium, n_fix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				k.scanType, k.title, k.vulnerabilityID, k.aliases, c[0], c[1], c[2], c[3], c[4]); err != nil {
				return fmt.Errorf("counts: %w", err)
			}
		}
		for _, k := range slices.SortedFunc(maps.Keys(l.counts.days), func(a, b dayCount) int {
			return cmp.Or(cmp.Compare(a.scanType, b.scanType), cmp.Compare(a.day, b.day))
		}) {
			c := l.counts.days[k]
			if _, err := tx.ExecContext(ctx, `INSERT INTO finding_days(scan_type, day, opened, closed) VALUES (?, ?, ?, ?)`,
				k.scanType, k.day, c[0], c[1]); err != nil {
				return fmt.Errorf("counts: %w", err)
			}
		}
		for _, def := range l.triggers {
			if _, err := tx.ExecContext(ctx, def); err != nil {
				return fmt.Errorf("counts: %w", err)
			}
		}
		return nil
	})
}

func (l *loader) write(ctx context.Context, imgs []preparedImage) error {
	// The statements run under a context that is never done, and the load checks ctx between
	// images instead: with a cancellable one the driver starts a goroutine per statement to
	// watch it (modernc's interruptOnDone), a tenth of the writer's time for rows of a few
	// microseconds.
	stmtCtx := context.WithoutCancel(ctx)
	conn, err := l.load.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// On the driver's connection itself: database/sql's locks and argument checks per statement
	// were a tenth of the writer's time, and the writer is the load's critical path.
	return conn.Raw(func(dc any) error {
		c, ok := dc.(interface {
			driver.ConnBeginTx
			driver.ConnPrepareContext
		})
		if !ok {
			return fmt.Errorf("sqlite driver connection %T: no BeginTx or PrepareContext", dc)
		}
		tx, err := c.BeginTx(stmtCtx, driver.TxOptions{})
		if err != nil {
			return err
		}
		if err := l.writeImages(ctx, stmtCtx, c, imgs); err != nil {
			return errors.Join(err, tx.Rollback())
		}
		return tx.Commit()
	})
}

// writeImages writes imgs in the transaction open on c.
func (l *loader) writeImages(ctx, stmtCtx context.Context, c driver.ConnPrepareContext, imgs []preparedImage) error {
	stmts := map[string]driver.StmtExecContext{}
	var named []driver.NamedValue
	exec := func(q string, args ...any) error {
		st := stmts[q]
		if st == nil {
			prepared, err := c.PrepareContext(stmtCtx, q)
			if err != nil {
				return err
			}
			if st, _ = prepared.(driver.StmtExecContext); st == nil {
				_ = prepared.Close()
				return fmt.Errorf("sqlite driver statement %T: no ExecContext", prepared)
			}
			stmts[q] = st
		}
		var err error
		if named, err = appendNamed(named[:0], q, args); err != nil {
			return err
		}
		_, err = st.ExecContext(stmtCtx, named)
		return err
	}
	// queryInt runs a query of one integer (prepared anew: the loader asks few).
	queryInt := func(q string, args ...any) (int64, error) {
		prepared, err := c.PrepareContext(stmtCtx, q)
		if err != nil {
			return 0, err
		}
		defer prepared.Close()
		st, ok := prepared.(driver.StmtQueryContext)
		if !ok {
			return 0, fmt.Errorf("sqlite driver statement %T: no QueryContext", prepared)
		}
		named, err := appendNamed(nil, q, args)
		if err != nil {
			return 0, err
		}
		rows, err := st.QueryContext(stmtCtx, named)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		dest := make([]driver.Value, 1)
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("%q: no row", q)
			}
			return 0, err
		}
		n, ok := dest[0].(int64)
		if !ok {
			return 0, fmt.Errorf("%q: %T, not an integer", q, dest[0])
		}
		return n, nil
	}
	defer func() {
		for _, st := range stmts {
			_ = st.(driver.Stmt).Close()
		}
	}()
	for _, img := range imgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.writeImage(exec, queryInt, img); err != nil {
			return fmt.Errorf("write %s@%s: %w", img.repo, img.digest, err)
		}
	}
	return nil
}

// appendNamed appends the arguments of query q to dst, converted by driverValue.
func appendNamed(dst []driver.NamedValue, q string, args []any) ([]driver.NamedValue, error) {
	for i, a := range args {
		v, err := driverValue(a)
		if err != nil {
			return dst, fmt.Errorf("argument %d of %q: %w", i+1, q, err)
		}
		dst = append(dst, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return dst, nil
}

// driverValue converts a statement's argument as database/sql would (driver.DefaultParameterConverter),
// the kinds the loader writes without reflection.
func driverValue(a any) (driver.Value, error) {
	switch v := a.(type) {
	case nil, int64, string, []byte, float64, bool, time.Time:
		return v, nil
	case int:
		return int64(v), nil
	}
	return driver.DefaultParameterConverter.ConvertValue(a)
}

func (l *loader) writeImage(exec func(string, ...any) error, queryInt func(string, ...any) (int64, error), img preparedImage) error {
	pushed := img.pushedAt.UnixMilli()
	imageSize := int64(4000)
	refs := [][3]any{{img.configDigest, store.RefConfig, int64(4000)}}
	for _, ly := range append(append([]layerDef(nil), img.base.layers...), img.layers...) {
		imageSize += ly.size
		refs = append(refs, [3]any{ly.digest, store.RefLayer, ly.size})
	}
	if err := exec(`INSERT INTO manifests(repository, digest, media_type, artifact_type, config_media_type, config_digest,
			subject, annotations, size, image_size, content, pushed_at) VALUES (?, ?, ?, '', ?, ?, '', '', ?, ?, ?, ?)`,
		img.repo, img.digest, "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json", img.configDigest,
		len(img.manifest), imageSize, img.manifest, pushed); err != nil {
		return err
	}
	// Its coverage row, numbered where the manifest's trigger inserts it, as the scan's and the
	// inventory's triggers leave it (0042_image_coverage.sql).
	noPackages := int64(0)
	if img.base.os.Ecosystem == "" && img.packages == 0 {
		noPackages = 1
	}
	if err := exec(`INSERT INTO image_coverage(repository, digest, pushed_at, last_pulled_at, status, description_head, no_packages)
			VALUES (?, ?, ?, 0, ?, substr(?, 1, 32), ?)`, img.repo, img.digest, pushed, scanning.StatusActive, scanning.DescActive, noPackages); err != nil {
		return err
	}
	blobLinks, references := make([]any, 0, 4*len(refs)), make([]any, 0, 5*len(refs))
	for i, r := range refs {
		blobLinks = append(blobLinks, img.repo, r[0], r[2], pushed)
		references = append(references, img.repo, img.digest, r[0], r[1], int64(i))
	}
	if err := l.blobLinks.write(exec, blobLinks); err != nil {
		return err
	}
	if err := l.references.write(exec, references); err != nil {
		return err
	}
	if err := exec(`INSERT INTO tags(repository, tag, digest, updated_at) VALUES (?, ?, ?, ?)`, img.repo, img.tag, img.digest, pushed); err != nil {
		return err
	}
	l.nextInv++
	inv := l.nextInv
	scanned := img.pushedAt.Add(time.Minute).UnixMilli()
	if err := exec(`INSERT INTO image_inventories(id, image_digest, mode, fingerprint, os, package_count, inventory, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, inv, img.digest, string(inventory.ModeEnhanced), l.fingerprint, img.base.os.Ecosystem,
		img.packages, img.inventory, scanned); err != nil {
		return err
	}
	l.stats.inventoryBytes += int64(len(img.inventory))
	links := make([]any, 0, 2*len(img.parts))
	for _, part := range img.parts {
		hash := [sha256.Size]byte(part.Hash)
		id, ok := l.partIDs[hash]
		if !ok {
			id = int64(len(l.partIDs) + 1)
			l.partIDs[hash] = id
			// Its keys are indexed once, when it is first stored (0051), as linkPartsTx does.
			ids := make([]int64, 0, len(part.Keys))
			for _, k := range part.Keys {
				kid, err := l.keyID(exec, advisory.PackageKey(k))
				if err != nil {
					return err
				}
				ids = append(ids, kid)
				l.pairs = append(l.pairs, uint64(kid)<<32|uint64(id))
			}
			slices.Sort(ids)
			if err := exec(`INSERT INTO inventory_parts(id, hash, data, key_ids) VALUES (?, ?, ?, ?)`, id, part.Hash, part.Data, store.EncodeKeyIDs(ids)); err != nil {
				return err
			}
			l.stats.inventoryBytes += int64(len(part.Data))
			l.stats.inventoryParts++
		}
		links = append(links, inv, id)
	}
	if err := l.partLinks.write(exec, links); err != nil {
		return err
	}
	if err := exec(`INSERT INTO image_scans(repository, image_digest, scan_type, status, description, frequency, inventory_id,
			last_scan_started_at, completed_at, source_updated_at, updated_at, image_facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		img.repo, img.digest, policy.ScanTypeEnhanced, scanning.StatusActive, scanning.DescActive, policy.FrequencyContinuous, inv,
		pushed, scanned, scanned, scanned, string(img.facts)); err != nil {
		return err
	}
	// The image's scan target is new with it: numbered here, written with its first finding.
	var target int64
	var rows, details []any // the arguments of the image's finding_rows and finding_details rows
	var err error
	for fi, f := range img.findings {
		l.nextFinding++
		// finding_rows as sqlite's upsert writes it and its indexFinding completes it
		// (finding_rows.go, findings_index.go): dictionary ids numbered here rather than
		// looked up, the other columns as prepare computed them from the finding and its
		// detail, written at once.
		c := &img.rows[fi]
		if target == 0 {
			l.nextDict++
			target = l.nextDict
			if err := exec(`INSERT INTO scan_targets(id, repository, image_digest, scan_type) VALUES (?, ?, ?, ?)`,
				target, f.Repository, f.Digest, f.ScanType); err != nil {
				return err
			}
		} else if f.Repository != img.repo || f.Digest != img.digest || f.ScanType != img.findings[0].ScanType {
			return fmt.Errorf("finding %s of another image", f.ARN)
		}
		ids := [4]int64{target}
		for i, d := range []struct{ insert, key string }{
			{`INSERT INTO finding_vulnerabilities(id, vulnerability_id) VALUES (?, ?)`, f.VulnerabilityID},
			{`INSERT INTO finding_arn_prefixes(id, prefix) VALUES (?, ?)`, c.arnPrefix},
			// The blank facts the store's upsert writes before its indexFinding sets the
			// detail's (the row stays, as in a scanned store): ids continue from it.
			{`INSERT INTO finding_facts(id, title, source, vendor_severity, aliases, related) VALUES (?, '', '', '', '[]', '[]')`, ""},
		} {
			// The last key of each dictionary first: the ARN prefix and the blank facts are the
			// same for every finding.
			if last := &l.dictLast[i]; last.id != 0 && last.key == d.key {
				ids[i+1] = last.id
				continue
			}
			dk := dictKey{i, d.key}
			id, ok := l.dictIDs[dk]
			if !ok {
				l.nextDict++
				id = l.nextDict
				l.dictIDs[dk] = id
				args := []any{id}
				if i < 2 {
					args = append(args, d.key)
				}
				if err := exec(d.insert, args...); err != nil {
					return err
				}
				if i == 2 {
					l.factIDs[factsKey(l.seeds, sqlite.FindingFacts{Aliases: "[]", Related: "[]"})], l.lastFact = id, id
				}
			}
			l.dictLast[i] = dictEntry{d.key, id}
			ids[i+1] = id
		}
		factID, ok := l.factIDs[img.details[fi].factsKey]
		if !ok {
			l.lastFact++
			factID = l.lastFact
			l.factIDs[img.details[fi].factsKey] = factID
			facts := img.details[fi].facts
			if err := exec(`INSERT INTO finding_facts(id, title, source, vendor_severity, aliases, related) VALUES (?, ?, ?, ?, ?, ?)`,
				factID, facts.Title, facts.Source, facts.VendorSeverity, facts.Aliases, facts.Related); err != nil {
				return err
			}
		}
		// The package keys by their finding_key_sets id (0053), numbered as the dictionaries.
		var keySet sql.NullInt64
		if keys := c.keys; keys.Valid {
			dk := dictKey{3, keys.String}
			id, ok := l.dictIDs[dk]
			if !ok {
				l.nextDict++
				id = l.nextDict
				l.dictIDs[dk] = id
				if err := exec(`INSERT INTO finding_key_sets(id, keys) VALUES (?, ?)`, id, keys.String); err != nil {
					return err
				}
			}
			keySet = sql.NullInt64{Int64: id, Valid: true}
		}
		rows = append(rows, ids[0], ids[1], l.nextFinding, ids[2], c.arnKey, c.status, c.severity, c.score, c.finger, keySet,
			c.first, c.lastAfter, c.updatedAfter, factID, c.fix)
		if details, err = l.writeDetail(exec, queryInt, details, l.nextFinding, img.details[fi]); err != nil {
			return err
		}
	}
	// The image's findings and their details, in statements of many rows each.
	if err := l.findingRows.write(exec, rows); err != nil {
		return err
	}
	if err := l.findingDetails.write(exec, details); err != nil {
		return err
	}
	if counts := img.counts; counts[0] > 0 {
		// The row the count trigger (0053) would have left after the image's last finding.
		if err := exec(`INSERT INTO image_finding_counts(repository, image_digest, scan_type, n_all, n_critical, n_high, n_medium,
				n_low, n_informational, n_undefined) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			img.repo, img.digest, img.findings[0].ScanType, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6]); err != nil {
			return err
		}
	}
	if err := exec(`INSERT INTO scan_usage(repository, image_digest, scan_type, kind, at) VALUES (?, ?, ?, ?, ?)`,
		img.repo, img.digest, policy.ScanTypeEnhanced, store.UsageInitial, scanned); err != nil {
		return err
	}
	l.stats.images++
	l.stats.packages += img.packages
	l.stats.findings += len(img.findings)
	return nil
}

// writeDetail stores a finding's detail as the store does (sqlite.SplitDetailParts;
// 0032_finding_texts.sql, 0046_finding_detail_layers.sql, 0049_finding_package_sets.sql): the
// vulnerability's text, the image's facts and the package's layer once each, in finding_texts,
// and the rest of the packages once, as a package set with its package rows (both numbered
// here rather than looked up); the detail row holds their ids. The detail was split in
// prepare (SplitDetailParts), on every core.
func (l *loader) writeDetail(exec func(string, ...any) error, queryInt func(string, ...any) (int64, error), details []any, id int64,
	d *storedDetail) ([]any, error) {
	p := d.parts
	setID, ok := l.setIDs[d.body]
	if !ok {
		setID = int64(len(l.setIDs) + 1)
		l.setIDs[d.body] = setID
		if err := exec(sqlite.InsertPackageSet, setID, p.Body); err != nil {
			return nil, err
		}
		for _, q := range sqlite.IndexPackageSetQueries() {
			if err := exec(q, setID); err != nil {
				return nil, err
			}
		}
	}
	texts, keys := []string{p.Head, p.Tail}, []textKey{d.head, d.tail}
	var layer any
	if p.Layer != "" {
		texts, keys = append(texts, p.Layer), append(keys, d.layer)
		// Its id looked up once per layer (a package set's rows may have written it first), not
		// by every detail row.
		id, ok := l.layers[d.layerDigest]
		if !ok {
			if err := exec(sqlite.InsertFindingLayer, p.LayerDigest); err != nil {
				return nil, err
			}
			var err error
			if id, err = queryInt(`SELECT id FROM finding_layers WHERE digest = ?`, p.LayerDigest); err != nil {
				return nil, fmt.Errorf("layer %s: %w", p.LayerDigest, err)
			}
			l.layers[d.layerDigest] = id
		}
		layer = id
	}
	ids := []any{nil, nil, nil}
	for i, text := range texts {
		tid, ok := l.textIDs[keys[i]]
		if !ok {
			tid = int64(len(l.textIDs) + 1)
			l.textIDs[keys[i]] = tid
			if err := exec(sqlite.InsertFindingText, tid, text); err != nil {
				return nil, err
			}
		}
		ids[i] = tid
	}
	// The detail row, written with the image's others (findingDetailsInsert): the store's
	// UpsertFindingParts without the conflict clause, which a new finding never meets.
	return append(details, id, ids[0], ids[1], ids[2], setID, layer), nil
}

// rowsInsert is an INSERT of one to insertRowsMax rows of a table: one statement of many rows
// costs SQLite and database/sql much less than as many of one row (the cursors are opened and
// the arguments converted once).
type rowsInsert struct {
	cols int
	sql  [insertRowsMax + 1]string // by number of rows
}

// insertRowsMax is the most rows a rowsInsert writes in one statement.
const insertRowsMax = 32

func newRowsInsert(insert, values, conflict string, cols int) *rowsInsert {
	r := &rowsInsert{cols: cols}
	for n := 1; n <= insertRowsMax; n++ {
		r.sql[n] = insert + " VALUES " + strings.Repeat(values+", ", n-1) + values + conflict
	}
	return r
}

// The loader's statements of many rows: finding_rows as sqlite's upsert writes it and its
// indexFinding completes it; finding_details as sqlite.UpsertFindingParts writes a new
// finding's split detail (its detail column NULL, the layer's id numbered by writeDetail),
// without the conflict clause, which a new finding never meets.
func findingRowsInsert() *rowsInsert {
	return newRowsInsert(`INSERT INTO finding_rows(target_id, vulnerability, id, arn_prefix, arn_key, status, severity, score, fingerprint,
		package_keys, first_observed_at, last_observed_after, updated_after, facts, fix_available, suppressed)`,
		`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`, "", 15)
}

// The image's blob links and references (registry.go's putManifest), in one statement each.
func blobLinksInsert() *rowsInsert {
	return newRowsInsert(`INSERT INTO repository_blobs(repository, digest, size, linked_at)`, `(?, ?, ?, ?)`, " ON CONFLICT DO NOTHING", 4)
}

func referencesInsert() *rowsInsert {
	return newRowsInsert(`INSERT INTO manifest_references(repository, manifest, target, kind, position)`, `(?, ?, ?, ?, ?)`, "", 5)
}

func findingDetailsInsert() *rowsInsert {
	return newRowsInsert(`INSERT INTO finding_details(finding_id, head_id, tail_id, layer_id, set_id, package_layer, detail)`,
		`(?, ?, ?, ?, ?, ?, NULL)`, "", 6)
}

// write inserts rows, r.cols arguments each, in order.
func (r *rowsInsert) write(exec func(string, ...any) error, args []any) error {
	for len(args) > 0 {
		n := min(len(args)/r.cols, insertRowsMax)
		if err := exec(r.sql[n], args[:n*r.cols]...); err != nil {
			return err
		}
		args = args[n*r.cols:]
	}
	return nil
}

// keyID returns the id of a package key, writing its package_keys row when new.
func (l *loader) keyID(exec func(string, ...any) error, k advisory.PackageKey) (int64, error) {
	id, ok := l.keyIDs[k]
	if !ok {
		id = int64(len(l.keyIDs) + 1)
		l.keyIDs[k] = id
		if err := exec(`INSERT INTO package_keys(id, ecosystem, name) VALUES (?, ?, ?)`, id, k.Ecosystem, k.Name); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// writeIndex writes the inverted index from packages to inventory parts in key order (appending
// to the B-tree instead of inserting all over it), a key's parts of a chunk in one posting row
// as linkPartsTx leaves them, and builds the second index of inventory_packages afterwards, as
// CREATE INDEX does it in one sorted pass. The result is the schema of
// 0054_inventory_key_postings.sql (inventory_packages stays empty, as new inventories leave it).
func (l *loader) writeIndex(ctx context.Context) error {
	slices.Sort(l.pairs)
	if err := l.loadTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DROP INDEX inventory_packages_inventory")
		return err
	}); err != nil {
		return err
	}
	const batch = 1 << 20 // pairs a transaction, about
	var ids []int64
	for start := 0; start < len(l.pairs); {
		end := min(start+batch, len(l.pairs))
		if err := l.loadTx(ctx, func(tx *sql.Tx) error {
			st, err := tx.PrepareContext(ctx, "INSERT INTO inventory_key_postings(key_id, chunk, part_ids) VALUES (?, ?, ?)")
			if err != nil {
				return err
			}
			defer st.Close()
			for start < end {
				// The pairs of one key and chunk, past end if need be: a row is written whole.
				key, chunk := int64(l.pairs[start]>>32), store.PartChunk(int64(l.pairs[start]&0xffffffff))
				ids = ids[:0]
				for ; start < len(l.pairs); start++ {
					p := l.pairs[start]
					id := int64(p & 0xffffffff)
					if int64(p>>32) != key || store.PartChunk(id) != chunk {
						break
					}
					ids = append(ids, id)
				}
				if _, err := st.ExecContext(ctx, key, chunk, store.EncodePartIDs(chunk, ids)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	l.stats.indexRows = len(l.pairs)
	l.stats.keys = len(l.keyIDs)
	l.pairs = nil
	return l.loadTx(ctx, func(tx *sql.Tx) error {
		// The indexes dropped for the load, as 0020_scanning.sql, 0045_findings_compact.sql and 0053_finding_rows_slim.sql define them.
		_, err := tx.ExecContext(ctx, `CREATE INDEX inventory_packages_inventory ON inventory_packages(inventory_id);
			CREATE INDEX finding_rows_arn ON finding_rows(coalesce(substr(arn_key, 1, 4), X''));
			CREATE INDEX finding_rows_vulnerability ON finding_rows(vulnerability, target_id)`)
		return err
	})
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
