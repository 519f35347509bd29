// Package metamigrate copies an embedded registry's metadata (SQLite) into a PostgreSQL store,
// table by table, resumably and verifiably (lading admin migrate --to-metadata).
//
// Every table of both migration sets is accounted for in Tables or NotCopied; CheckSchemas (run
// before every copy, and by a test against fresh stores) fails when either side has a table or a
// column the copy does not know, so a new migration cannot be silently left behind.
package metamigrate

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// Table is one table copied row for row: the same name and columns on both engines.
type Table struct {
	Name string
	Cols []string // the columns read from SQLite and written to PostgreSQL
	Key  []string // the primary key: the order the checksums read in
	// Derived are PostgreSQL-only columns computed from a copied row (by column index in Cols).
	Derived map[string]func(row []any) any
	// Skip is an SQL condition, the same on both engines, on rows neither copied nor compared.
	Skip string
	// Source are SQLite expressions read for columns SQLite stores otherwise (by column name;
	// the others are read as they are), and SourceOnly SQLite's columns those expressions
	// read, which PostgreSQL does not have.
	Source     map[string]string
	SourceOnly []string
	// Filled are PostgreSQL-only columns neither copied nor compared: the copy of another
	// table fills them (through its view's trigger), and that table's rows are compared.
	Filled []string
}

// sourceList is the select list reading t's columns on SQLite.
func sourceList(t Table) string {
	out := make([]string, len(t.Cols))
	for i, c := range t.Cols {
		out[i] = ident(c)
		if e, ok := t.Source[c]; ok {
			out[i] = "(" + e + ") AS " + ident(c)
		}
	}
	return strings.Join(out, ", ")
}

// Tables are the tables copied, in this order (parents before the tables whose foreign keys
// name them).
func Tables() []Table {
	return []Table{
		// The target's migration mark is its own; a source an older Lading marked holds one too.
		{Name: "settings", Cols: []string{"key", "value"}, Key: []string{"key"}, Skip: `"key" = '` + markerKey + `'`},
		{Name: "repositories", Cols: []string{"name", "created_at", "tag_mutability", "scan_on_push", "encryption_type", "kms_key"}, Key: []string{"name"}},
		{Name: "repository_resource_tags", Cols: []string{"repository", "key", "value"}, Key: []string{"repository", "key"}},
		{Name: "repository_blobs", Cols: []string{"repository", "digest", "size", "linked_at"}, Key: []string{"repository", "digest"}},
		{Name: "manifests", Cols: []string{"repository", "digest", "media_type", "artifact_type", "config_media_type", "config_digest", "subject", "annotations", "size", "image_size", "content", "pushed_at", "last_pulled_at"}, Key: []string{"repository", "digest"}},
		{Name: "manifest_references", Cols: []string{"repository", "manifest", "target", "kind", "position"}, Key: []string{"repository", "manifest", "position"}},
		{Name: "tags", Cols: []string{"repository", "tag", "digest", "updated_at"}, Key: []string{"repository", "tag"}},
		{Name: "access_keys", Cols: []string{"id", "secret", "description", "created_at", "name", "preset", "policy"}, Key: []string{"id"}},
		{Name: "lifecycle_policies", Cols: []string{"repository", "policy", "updated_at", "last_evaluated_at"}, Key: []string{"repository"}},
		{Name: "lifecycle_previews", Cols: []string{"repository", "policy", "status", "results", "created_at"}, Key: []string{"repository"}},
		{Name: "pull_gates", Cols: []string{"repository", "severity", "grace_ms", "exempt", "updated_at"}, Key: []string{"repository"}},
		{Name: "registry_policy", Cols: []string{"id", "policy", "updated_at"}, Key: []string{"id"}},
		{Name: "repository_policies", Cols: []string{"repository", "policy", "updated_at"}, Key: []string{"repository"}},
		{Name: "advisory_batches", Cols: []string{"batch_id", "version", "base_version", "kind", "source", "started_at", "committed_at", "added", "changed", "withdrawn", "deleted", "unchanged", "changes_kept"}, Key: []string{"batch_id"}},
		{Name: "advisory_records", Cols: []string{"id", "batch_id", "modified", "withdrawn", "hash", "raw"}, Key: []string{"id", "batch_id"}},
		{Name: "advisory_packages", Cols: []string{"ecosystem", "name", "id", "batch_id"}, Key: []string{"ecosystem", "name", "id", "batch_id"}},
		{Name: "advisory_current", Cols: []string{"id", "batch_id"}, Key: []string{"id"}},
		{Name: "advisory_deletions", Cols: []string{"batch_id", "id"}, Key: []string{"batch_id", "id"}},
		{Name: "advisory_changes", Cols: []string{"batch_id", "ecosystem", "name"}, Key: []string{"batch_id", "ecosystem", "name"}},
		{Name: "scan_jobs", Cols: []string{"id", "repository", "image_digest", "scan_type", "trigger", "state", "attempts", "lease_owner", "lease_until", "created_at"}, Key: []string{"id"}},
		{Name: "layer_inventories", Cols: []string{"layer_digest", "mode", "fingerprint", "inventory", "created_at"}, Key: []string{"layer_digest", "mode"}},
		{Name: "image_inventories", Cols: []string{"id", "image_digest", "mode", "fingerprint", "os", "package_count", "inventory", "created_at"}, Key: []string{"id"}},
		{Name: "package_keys", Cols: []string{"id", "ecosystem", "name"}, Key: []string{"id"}},
		{Name: "inventory_packages", Cols: []string{"key_id", "inventory_id"}, Key: []string{"key_id", "inventory_id"}},
		// key_ids: SQLite's uvarint deltas (0051) become PostgreSQL's int4[] (0046, convertValue).
		{Name: "inventory_parts", Cols: []string{"id", "hash", "data", "key_ids"}, Key: []string{"id"}},
		{Name: "inventory_part_links", Cols: []string{"inventory_id", "part_id"}, Key: []string{"inventory_id", "part_id"}},
		{Name: "image_scans", Cols: []string{"repository", "image_digest", "scan_type", "status", "description", "frequency", "inventory_id", "last_scan_started_at", "completed_at", "source_updated_at", "updated_at", "image_facts", "not_evaluated", "not_evaluated_packages", "findings_observed_at"},
			Key: []string{"repository", "image_digest", "scan_type"},
			// PostgreSQL keeps the architecture the finding queries filter on in a column; SQLite
			// reads it out of image_facts. Computed as the PostgreSQL store's own writes do.
			Derived: map[string]func([]any) any{"architecture": func(row []any) any {
				facts, _ := row[11].(string) // image_facts is TEXT NOT NULL: converted to string before
				var m map[string]json.RawMessage
				if len(facts) > 0 && facts[0] == '{' && json.Unmarshal([]byte(facts), &m) == nil {
					var s string
					if raw := m["architecture"]; len(raw) > 0 && json.Unmarshal(raw, &s) == nil {
						return strings.ReplaceAll(s, "\x00", "")
					}
				}
				return ""
			}}},
		{Name: "scan_usage", Cols: []string{"id", "repository", "image_digest", "scan_type", "kind", "at"}, Key: []string{"id"}},
		{Name: "suppression_rules", Cols: []string{"id", "arn", "name", "action", "description", "reason", "criteria", "tags", "owner", "created_at", "updated_at"}, Key: []string{"id"}},
		// findings' insert trigger fills image_finding_counts on PostgreSQL.
		{Name: "findings", Cols: []string{"id", "repository", "image_digest", "scan_type", "vulnerability_id", "arn", "status", "severity", "score", "fingerprint", "package_keys", "first_observed_at", "last_observed_at", "updated_at", "title", "source", "vendor_severity", "fix_available", "aliases", "related", "suppressed"}, Key: []string{"id"},
			// A finding's detail parts (0050), written by the copy of finding_details, and its
			// image's id and ARN key (0052), which the findings view's trigger writes.
			Filled: []string{"head_id", "tail_id", "set_id", "layer_id", "target_id", "arn_key"}},
		{Name: "finding_texts", Cols: []string{"id", "text"}, Key: []string{"id"}},
		// SQLite keeps a detail's layer text (0046) and its packages part (0049, a shared package
		// set unless the row holds it) apart: PostgreSQL gets the packages part whole.
		// finding_details and finding_packages are views on PostgreSQL (0043) whose INSTEAD OF
		// triggers store each distinct packages body and its rows once.
		{Name: "finding_details", Cols: []string{"finding_id", "head_id", "tail_id", "detail"}, Key: []string{"finding_id"},
			Source: map[string]string{"detail": `CASE WHEN head_id IS NULL THEN detail
				WHEN layer_id IS NULL THEN coalesce(detail, (SELECT body FROM finding_package_sets WHERE id = set_id))
				ELSE replace(coalesce(detail, (SELECT body FROM finding_package_sets WHERE id = set_id)), char(1),
					(SELECT text FROM finding_texts WHERE id = layer_id)) END`},
			SourceOnly: []string{"layer_id", "set_id", "package_layer"},
			// A row holding only a finding's package rows (written through SQLite's finding_packages
			// view, 0049) is no detail.
			Skip: "head_id IS NULL AND detail IS NULL"},
		{Name: "finding_packages", Cols: []string{"finding_id", "seq", "name", "version", "epoch", "release", "arch", "file_path", "source_layer_hash", "reachability"}, Key: []string{"finding_id", "seq"}},
		{Name: "outbox", Cols: []string{"seq", "id", "detail_type", "source", "account", "region", "time", "resources", "detail", "created_at"}, Key: []string{"seq"}},
		{Name: "webhook_cursors", Cols: []string{"webhook", "position", "created_at", "updated_at"}, Key: []string{"webhook"}},
		{Name: "report_jobs", Cols: []string{"id", "kind", "format", "status", "error_code", "error_message", "bucket", "key_prefix", "kms_key_arn", "criteria", "files", "owner", "created_at", "updated_at"}, Key: []string{"id"}},
	}
}

// NotCopied are the tables (and views) of either engine the copy leaves alone, with why.
func NotCopied() map[string]string {
	return map[string]string{
		"schema_migrations":            "each engine's own migration record; the target's migrations ran when it was opened",
		"sqlite_sequence":              "SQLite's AUTOINCREMENT counters; PostgreSQL's identity sequences are set past the copied ids instead",
		"sqlite_stat1":                 "SQLite's query planner statistics (ANALYZE, sqlite.Open); PostgreSQL gathers its own",
		"sqlite_stat4":                 "SQLite's query planner statistics (ANALYZE, sqlite.Open); PostgreSQL gathers its own",
		"uploads":                      "upload sessions in progress: their partial data is not moved (blob migrate copies committed blobs), clients restart them",
		"image_finding_counts":         "derived: rebuilt on PostgreSQL by the findings trigger as findings are copied; --verify compares it with the source's",
		"finding_days":                 "SQLite-only aggregate of opened/closed findings per day; PostgreSQL computes it from findings",
		"vulnerability_finding_counts": "SQLite-only aggregate per vulnerability; PostgreSQL computes it from findings",
		"finding_detail_view":          "PostgreSQL view over finding_details and finding_texts",
		"image_coverage":               "SQLite-only: coverage's per-image state, kept by triggers; PostgreSQL reads the base tables",
		"repository_finding_counts":    "SQLite-only aggregate of image_finding_counts per repository; PostgreSQL sums image_finding_counts",
		"leases":                       "running nodes' holds on duties and webhooks: the new nodes take their own",
		"finding_rows":                 "each engine's compact storage of findings (SQLite 0045, PostgreSQL 0052), copied through the findings view",
		"scan_targets":                 "each engine's dictionary of finding_rows (repository, digest, scan type), copied through the findings view",
		"finding_vulnerabilities":      "each engine's dictionary of finding_rows (vulnerability ids), copied through the findings view",
		"finding_arn_prefixes":         "each engine's dictionary of finding_rows (ARN prefixes), copied through the findings view",
		"finding_facts":                "each engine's dictionary of finding_rows (vulnerability titles, sources, aliases), copied through the findings view",
		"finding_key_sets":             "each engine's dictionary of finding_rows (package key lists, SQLite 0053), copied through the findings view",
		"finding_layers":               "each engine's dictionary of the layers of finding packages (SQLite 0047, PostgreSQL 0043), filled through the finding_packages and finding_details views",
		"finding_package_sets":         "each engine's shared packages parts of finding details (SQLite 0049, PostgreSQL 0043), copied through finding_details.detail and written through PostgreSQL's finding_details view",
		"inventory_key_postings":       "SQLite-only index of inventory_parts.key_ids (0051, posting lists since 0054); PostgreSQL indexes the copied key_ids column itself (GIN, 0046)",
		"finding_set_packages":         "each engine's package rows of finding_package_sets (SQLite 0049, PostgreSQL 0043), copied through and written through the finding_packages views",
	}
}

// verifyOnly are derived tables --verify compares on both engines after the copy.
func verifyOnly() []Table {
	return []Table{
		{Name: "image_finding_counts", Cols: []string{"repository", "image_digest", "scan_type", "n_all", "n_critical", "n_high", "n_medium", "n_low", "n_informational", "n_undefined"}, Key: []string{"repository", "image_digest", "scan_type"}},
	}
}

// markerKey is the setting of the target naming the registry it was migrated from (its
// identity, see sourceIdentity), so a rerun resumes into it and a run from another registry is
// refused. Only the target is written: a migration leaves its source as it found it.
const markerKey = "lading.migrated_from"

// DefaultBatchRows is how many rows one target transaction copies when Options.BatchRows is 0.
const DefaultBatchRows = 5000

// TableReport is what one table's copy and check found.
type TableReport struct {
	Table    string
	Source   int64 // rows in the source
	Copied   int64 // rows inserted into the target by this run
	Target   int64 // rows in the target after (with Verify)
	Checksum string
	Verified bool
}

// Options tune Copy.
type Options struct {
	Verify   bool                  // compare row counts and per-table checksums at the end
	Progress func(rep TableReport) // called after each table
	// BatchRows is how many rows of a table go into the target in one transaction (in key
	// order), so that a table of millions of rows is never one transaction and an interrupted
	// run resumes after the last committed batch. 0 means DefaultBatchRows.
	BatchRows int
	// AfterBatch is called after each committed batch with the rows it inserted; an error
	// stops the copy there, as an interruption would.
	AfterBatch func(table string, copied int64) error
}

// ErrOtherRegistry is returned when the target holds another registry's data.
var ErrOtherRegistry = errors.New("the target PostgreSQL store holds another registry's data")

// ErrMismatch is returned when --verify finds a table whose rows differ.
var ErrMismatch = errors.New("copied metadata differs from the source")

// colInfo is one PostgreSQL column's type and whether it is an identity column.
type colInfo struct {
	typ      string
	identity bool
}

type schemaInfo map[string]map[string]colInfo // table → column → info

// Copy copies every table of Tables from src (an SQLite store, migrated to the current schema)
// into dst (a PostgreSQL store, migrated), reading src in one transaction: a snapshot, so the
// copy is consistent even beside a running server, but what is written after the snapshot is
// not copied (and a rerun inserts only missing rows, never updates one): stop the source
// registry before the run whose result is used. Each table is copied in key order in batches
// of Options.BatchRows rows, each batch its own target transaction inserting only rows whose
// key the target lacks; a rerun after an interruption starts after the target's last row of
// the table, and goes over the whole table again only when the counts then still differ (the
// source gained rows below that point since), so it finishes the job without duplicates.
func Copy(ctx context.Context, source *sqlite.DB, dst *pgxpool.Pool, opt Options) ([]TableReport, error) {
	src := source.Reader()
	if opt.BatchRows <= 0 {
		opt.BatchRows = DefaultBatchRows
	}
	pg, err := pgSchema(ctx, dst)
	if err != nil {
		return nil, err
	}
	lite, err := sqliteSchema(ctx, src)
	if err != nil {
		return nil, err
	}
	if err := CheckSchemas(lite, columnsOnly(pg)); err != nil {
		return nil, err
	}
	tx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("source snapshot: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	id, err := sourceIdentity(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := claimTarget(ctx, dst, id); err != nil {
		return nil, err
	}
	var reps []TableReport
	for _, t := range Tables() {
		rep, err := copyTable(ctx, tx, dst, t, pg[t.Name], opt)
		if err != nil {
			return reps, fmt.Errorf("copy %s: %w", t.Name, err)
		}
		if opt.Verify {
			if err := verifyTable(ctx, tx, dst, t, pg[t.Name], &rep); err != nil {
				return reps, err
			}
		}
		reps = append(reps, rep)
		if opt.Progress != nil {
			opt.Progress(rep)
		}
	}
	if err := setSequences(ctx, dst, pg); err != nil {
		return reps, err
	}
	if err := compact(ctx, dst); err != nil {
		return reps, err
	}
	if opt.Verify {
		for _, t := range verifyOnly() {
			rep := TableReport{Table: t.Name}
			if rep.Source, err = count(ctx, tx, t); err != nil {
				return reps, err
			}
			if err := verifyTable(ctx, tx, dst, t, pg[t.Name], &rep); err != nil {
				return reps, err
			}
			reps = append(reps, rep)
			if opt.Progress != nil {
				opt.Progress(rep)
			}
		}
	}
	return reps, nil
}

// compactWait bounds compact's wait for transactions older than the copy's end.
const compactWait = 10 * time.Second

// compact rewrites image_finding_counts and finding_rows (the findings) and gives the planner statistics of the
// copied tables. Copying findings ran the trigger keeping image_finding_counts once per finding,
// so each image's count row was rewritten as many times as it has findings within a batch's
// transaction, leaving that many dead versions: 121 MiB for 9,353 rows at 10,000 images, which
// a plain VACUUM marks reusable but does not give back. Copying finding_details writes each
// detail's parts into its finding's row (PostgreSQL's 0050), a second version of every row.
func compact(ctx context.Context, dst *pgxpool.Pool) error {
	// A transaction open elsewhere on the server (any database) that began during the copy
	// would keep those versions through the rewrite: wait a bounded while for such to end.
	if err := postgres.WaitForOlderTransactions(ctx, dst, compactWait); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	for _, t := range []string{"image_finding_counts", "finding_rows"} {
		if _, err := dst.Exec(ctx, "VACUUM (FULL, ANALYZE) "+t); err != nil {
			return fmt.Errorf("compact %s: %w", t, err)
		}
	}
	for _, t := range Tables() {
		if _, err := dst.Exec(ctx, "ANALYZE "+ident(t.Name)); err != nil {
			return fmt.Errorf("analyze %s: %w", t.Name, err)
		}
	}
	return nil
}

func columnsOnly(pg schemaInfo) map[string][]string {
	out := map[string][]string{}
	for t, cols := range pg {
		for c := range cols {
			out[t] = append(out[t], c)
		}
	}
	return out
}

// CheckSchemas fails unless every table of both engines is in Tables, NotCopied or verifyOnly,
// and every copied table has exactly Cols plus SourceOnly on SQLite and Cols plus Derived and
// Filled on PostgreSQL.
func CheckSchemas(sqlite, postgres map[string][]string) error {
	tables, notCopied := Tables(), NotCopied()
	known := map[string]Table{}
	var problems []string
	for _, t := range tables {
		known[t.Name] = t
		for _, k := range t.Key {
			if !slices.Contains(t.Cols, k) {
				problems = append(problems, fmt.Sprintf("table %s: key column %s is not copied", t.Name, k))
			}
		}
	}
	for engine, tables := range map[string]map[string][]string{"sqlite": sqlite, "postgres": postgres} {
		for name, cols := range tables {
			if _, ok := notCopied[name]; ok {
				continue
			}
			t, ok := known[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s table %s: not in metamigrate.Tables or NotCopied", engine, name))
				continue
			}
			want := slices.Clone(t.Cols)
			if engine == "postgres" {
				for c := range t.Derived {
					want = append(want, c)
				}
				want = append(want, t.Filled...)
			} else {
				want = append(want, t.SourceOnly...)
			}
			sort.Strings(want)
			got := slices.Clone(cols)
			sort.Strings(got)
			if !slices.Equal(got, want) {
				problems = append(problems, fmt.Sprintf("%s table %s: columns %v, the copy knows %v", engine, name, got, want))
			}
		}
	}
	for _, t := range tables {
		for engine, tables := range map[string]map[string][]string{"sqlite": sqlite, "postgres": postgres} {
			if _, ok := tables[t.Name]; !ok {
				problems = append(problems, fmt.Sprintf("%s has no table %s", engine, t.Name))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("metadata schemas and the copy disagree (update internal/store/metamigrate): %s", strings.Join(problems, "; "))
	}
	return nil
}

// SQLiteColumns lists the tables of an SQLite store with their columns.
func SQLiteColumns(ctx context.Context, db *sql.DB) (map[string][]string, error) {
	return sqliteSchema(ctx, db)
}

// PostgresColumns lists the tables and views of the PostgreSQL store with their columns.
func PostgresColumns(ctx context.Context, pool *pgxpool.Pool) (map[string][]string, error) {
	s, err := pgSchema(ctx, pool)
	if err != nil {
		return nil, err
	}
	return columnsOnly(s), nil
}

func sqliteSchema(ctx context.Context, db *sql.DB) (map[string][]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type IN ('table', 'view') ORDER BY m.name, p.cid`)
	if err != nil {
		return nil, fmt.Errorf("source schema: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, err
		}
		out[t] = append(out[t], c)
	}
	return out, rows.Err()
}

func pgSchema(ctx context.Context, pool *pgxpool.Pool) (schemaInfo, error) {
	rows, err := pool.Query(ctx, `SELECT table_name, column_name, data_type, is_identity = 'YES'
		FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("target schema: %w", err)
	}
	defer rows.Close()
	out := schemaInfo{}
	for rows.Next() {
		var t, c, typ string
		var ident bool
		if err := rows.Scan(&t, &c, &typ, &ident); err != nil {
			return nil, err
		}
		if out[t] == nil {
			out[t] = map[string]colInfo{}
		}
		out[t][c] = colInfo{typ: typ, identity: ident}
	}
	return out, rows.Err()
}

// sourceIdentity names the source registry without writing to it: the versions of its schema
// migrations with the millisecond each was applied at. The first ones were applied when the
// store was made, so two registries do not share them; a later upgrade of the source adds
// versions and changes none (see sameRegistry).
func sourceIdentity(ctx context.Context, src *sql.Tx) (string, error) {
	rows, err := src.QueryContext(ctx, "SELECT version, applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		return "", fmt.Errorf("source schema_migrations: %w", err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var v, at int64
		if err := rows.Scan(&v, &at); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%d@%d", v, at))
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return "", errors.New("the source has no schema migrations: not a Lading store")
	}
	return identityPrefix + strings.Join(parts, ","), nil
}

const identityPrefix = "sqlite-migrations:"

// sameRegistry reports whether two identities name one registry: they share a migration and
// agree on when each migration they share was applied.
func sameRegistry(a, b string) bool {
	parse := func(s string) map[string]string {
		rest, ok := strings.CutPrefix(s, identityPrefix)
		if !ok {
			return nil
		}
		m := map[string]string{}
		for _, p := range strings.Split(rest, ",") {
			if v, at, ok := strings.Cut(p, "@"); ok {
				m[v] = at
			}
		}
		return m
	}
	x, y := parse(a), parse(b)
	shared := 0
	for v, at := range x {
		if other, ok := y[v]; ok {
			if other != at {
				return false
			}
			shared++
		}
	}
	return shared > 0
}

// created is the time an identity's first migration was applied, for messages.
func created(id string) string {
	rest, ok := strings.CutPrefix(id, identityPrefix)
	if !ok {
		return "unknown"
	}
	first, _, _ := strings.Cut(rest, ",")
	_, at, _ := strings.Cut(first, "@")
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return "unknown"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// claimTarget accepts an empty target, or one an earlier run from this source marked; it marks
// an empty one before anything else is copied.
func claimTarget(ctx context.Context, dst *pgxpool.Pool, id string) error {
	var have string
	err := dst.QueryRow(ctx, "SELECT value FROM settings WHERE key = $1", markerKey).Scan(&have)
	switch {
	case err == nil && sameRegistry(have, id):
		if have != id {
			// The source was upgraded since: its identity now lists more migrations.
			_, err = dst.Exec(ctx, "UPDATE settings SET value = $2 WHERE key = $1", markerKey, id)
		}
		return err
	case err == nil:
		return fmt.Errorf("%w (migrated from a registry created %s, this one was created %s)", ErrOtherRegistry, created(have), created(id))
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("target settings: %w", err)
	}
	for _, t := range append(Tables(), Table{Name: "uploads"}) {
		var any bool
		if err := dst.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+ident(t.Name)+")").Scan(&any); err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		if any {
			return fmt.Errorf("%w: table %s has rows and no migration mark", ErrOtherRegistry, t.Name)
		}
	}
	_, err = dst.Exec(ctx, "INSERT INTO settings(key, value) VALUES ($1, $2)", markerKey, id)
	return err
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() } // "x" quoting is SQLite's too

func colList(cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = ident(c)
	}
	return strings.Join(quoted, ", ")
}

// textColumns are t's columns PostgreSQL holds as text: ordered there by COLLATE "C", which is
// SQLite's BINARY order.
func textColumns(t Table, cols map[string]colInfo) map[string]bool {
	out := map[string]bool{}
	for _, c := range t.Cols {
		out[c] = cols[c].typ == "text"
	}
	return out
}

// where is the WHERE clause leaving out the rows Skip names and, with after, those up to that
// key (SQLite's row values; parameters are ?).
func where(t Table, after []any) string {
	var conds []string
	if t.Skip != "" {
		conds = append(conds, "NOT ("+t.Skip+")")
	}
	if after != nil {
		conds = append(conds, "("+colList(t.Key)+") > ("+strings.TrimSuffix(strings.Repeat("?, ", len(t.Key)), ", ")+")")
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func orderBy(t Table, textCols map[string]bool, desc bool) string {
	order := make([]string, len(t.Key))
	for i, k := range t.Key {
		order[i] = ident(k)
		if textCols[k] {
			order[i] += ` COLLATE "C"`
		}
		if desc {
			order[i] += " DESC"
		}
	}
	return " ORDER BY " + strings.Join(order, ", ")
}

// batchSQL selects the source's next batch of t's rows after the key values after.
func batchSQL(t Table, after []any, n int) (string, []any) {
	return "SELECT " + sourceList(t) + " FROM " + ident(t.Name) + where(t, after) + orderBy(t, nil, false) + " LIMIT ?",
		append(slices.Clone(after), n)
}

// lastKey is the key of the target's last row of t in key order, nil when it has none.
func lastKey(ctx context.Context, dst *pgxpool.Pool, t Table, textCols map[string]bool) ([]any, error) {
	rows, err := dst.Query(ctx, "SELECT "+colList(t.Key)+" FROM "+ident(t.Name)+where(t, nil)+orderBy(t, textCols, true)+" LIMIT 1")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals, err := rows.Values()
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		if x, ok := v.(int32); ok { // SQLite takes int64
			vals[i] = int64(x)
		}
	}
	return vals, rows.Err()
}

// selectSQL reads all of t's rows in key order, on SQLite or (pgSide, with the derived
// columns) on PostgreSQL.
func selectSQL(t Table, textCols map[string]bool, pgSide bool) string {
	if !pgSide {
		return "SELECT " + sourceList(t) + " FROM " + ident(t.Name) + where(t, nil) + orderBy(t, textCols, false)
	}
	cols := append(slices.Clone(t.Cols), sortedKeys(t.Derived)...)
	return "SELECT " + colList(cols) + " FROM " + ident(t.Name) + where(t, nil) + orderBy(t, textCols, false)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// convert turns one SQLite row into the values PostgreSQL's column types take, the derived
// columns appended.
func convert(t Table, cols map[string]colInfo, row []any) ([]any, error) {
	out := make([]any, 0, len(row)+len(t.Derived))
	for i, v := range row {
		c, err := convertValue(cols[t.Cols[i]].typ, v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", t.Cols[i], err)
		}
		out = append(out, c)
	}
	for _, c := range sortedKeys(t.Derived) {
		out = append(out, t.Derived[c](out))
	}
	return out, nil
}

func convertValue(typ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "boolean":
		switch x := v.(type) {
		case int64:
			return x != 0, nil
		case bool:
			return x, nil
		}
	case "bigint", "integer", "smallint":
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case "double precision", "real":
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case "ARRAY": // inventory_parts.key_ids, the only array column: int4[] of SQLite's encoded ids
		if x, ok := v.([]byte); ok {
			ids, err := store.DecodeKeyIDs(x)
			if err != nil {
				return nil, err
			}
			out := make([]int32, len(ids))
			for i, id := range ids {
				if id > math.MaxInt32 {
					return nil, fmt.Errorf("key id %d does not fit an int4", id)
				}
				out[i] = int32(id)
			}
			return out, nil
		}
	case "text", "jsonb":
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	}
	return nil, fmt.Errorf("a %T value for a %s column", v, typ)
}

func copyTable(ctx context.Context, src *sql.Tx, dst *pgxpool.Pool, t Table, cols map[string]colInfo, opt Options) (TableReport, error) {
	rep := TableReport{Table: t.Name}
	var err error
	if rep.Source, err = count(ctx, src, t); err != nil {
		return rep, err
	}
	textCols := textColumns(t, cols)
	// Batches are committed in key order, so what an interrupted run left is the table's
	// first rows: go on after the last of them.
	after, err := lastKey(ctx, dst, t, textCols)
	if err != nil {
		return rep, err
	}
	resumed := after != nil
	if err := copyFrom(ctx, src, dst, t, cols, opt, after, &rep); err != nil {
		return rep, err
	}
	if resumed {
		// The source gained rows below that point since the interrupted run's snapshot (a
		// server ran between the runs): one pass over the whole table inserts them.
		n, err := pgCount(ctx, dst, t)
		if err != nil {
			return rep, err
		}
		if n < rep.Source {
			if err := copyFrom(ctx, src, dst, t, cols, opt, nil, &rep); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// copyFrom copies the source's rows of t after the key values after (from the first row when
// nil) into the target, in batches of opt.BatchRows rows, each in its own transaction.
func copyFrom(ctx context.Context, src *sql.Tx, dst *pgxpool.Pool, t Table, cols map[string]colInfo, opt Options, after []any, rep *TableReport) error {
	all := append(slices.Clone(t.Cols), sortedKeys(t.Derived)...)
	cl := colList(all)
	keyAt := make([]int, len(t.Key)) // the key columns' places in t.Cols
	for i, k := range t.Key {
		keyAt[i] = slices.Index(t.Cols, k)
	}
	vals := make([]any, len(t.Cols))
	ptrs := make([]any, len(t.Cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for {
		q, args := batchSQL(t, after, opt.BatchRows)
		rows, err := src.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		var n int64
		var last []any
		err = pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error {
			// The rows go to a temporary table by COPY, then into the table, skipping those
			// whose key is already there: a rerun never inserts a row twice.
			if _, err := tx.Exec(ctx, "CREATE TEMP TABLE migrate_rows (LIKE "+ident(t.Name)+") ON COMMIT DROP"); err != nil {
				return err
			}
			var convErr error
			read, err := tx.CopyFrom(ctx, pgx.Identifier{"migrate_rows"}, all, pgx.CopyFromFunc(func() ([]any, error) {
				if !rows.Next() {
					return nil, rows.Err()
				}
				if err := rows.Scan(ptrs...); err != nil {
					return nil, err
				}
				row, err := convert(t, cols, vals)
				if err != nil {
					convErr = err
					return nil, err
				}
				last = last[:0]
				for _, i := range keyAt {
					last = append(last, vals[i])
				}
				return row, nil
			}))
			if err != nil {
				return errors.Join(err, convErr)
			}
			if n = read; n == 0 {
				return nil
			}
			tag, err := tx.Exec(ctx, "INSERT INTO "+ident(t.Name)+" ("+cl+") OVERRIDING SYSTEM VALUE SELECT "+cl+
				" FROM migrate_rows ON CONFLICT DO NOTHING")
			if err != nil {
				return err
			}
			rep.Copied += tag.RowsAffected()
			return nil
		})
		_ = rows.Close()
		if err != nil {
			return err
		}
		if n > 0 && opt.AfterBatch != nil {
			if err := opt.AfterBatch(t.Name, n); err != nil {
				return err
			}
		}
		if n < int64(opt.BatchRows) {
			return nil
		}
		after = slices.Clone(last)
	}
}

// setSequences moves every identity column's sequence past the copied ids, so the next row
// the registry makes on PostgreSQL gets a new one.
func setSequences(ctx context.Context, dst *pgxpool.Pool, pg schemaInfo) error {
	for _, t := range sortedKeys(pg) {
		for _, c := range sortedKeys(pg[t]) {
			if !pg[t][c].identity {
				continue
			}
			q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max(%s), 0) + 1, false) FROM %s",
				pgx.Identifier{c}.Sanitize(), pgx.Identifier{t}.Sanitize())
			if _, err := dst.Exec(ctx, q, t, c); err != nil {
				return fmt.Errorf("sequence of %s.%s: %w", t, c, err)
			}
		}
	}
	return nil
}

// count is how many rows of t the source holds (those Skip leaves out aside).
func count(ctx context.Context, src *sql.Tx, t Table) (int64, error) {
	var n int64
	err := src.QueryRowContext(ctx, "SELECT count(*) FROM "+ident(t.Name)+where(t, nil)).Scan(&n)
	return n, err
}

// pgCount is count on the target.
func pgCount(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, t Table) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, "SELECT count(*) FROM "+ident(t.Name)+where(t, nil)).Scan(&n)
	return n, err
}

// verifyTable compares the target's rows with the source's (converted as the copy converts
// them) by count and SHA-256 over every value in key order.
func verifyTable(ctx context.Context, src *sql.Tx, dst *pgxpool.Pool, t Table, cols map[string]colInfo, rep *TableReport) error {
	textCols := map[string]bool{}
	jsonCol := map[int]bool{}
	all := append(slices.Clone(t.Cols), sortedKeys(t.Derived)...)
	for i, c := range all {
		textCols[c] = cols[c].typ == "text"
		jsonCol[i] = cols[c].typ == "jsonb"
	}
	srcSum, srcN := sha256.New(), int64(0)
	rows, err := src.QueryContext(ctx, selectSQL(t, nil, false))
	if err != nil {
		return fmt.Errorf("verify %s: %w", t.Name, err)
	}
	vals := make([]any, len(t.Cols))
	ptrs := make([]any, len(t.Cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return fmt.Errorf("verify %s: %w", t.Name, err)
		}
		row, err := convert(t, cols, vals)
		if err != nil {
			rows.Close()
			return fmt.Errorf("verify %s: %w", t.Name, err)
		}
		if err := hashRow(srcSum, row, jsonCol); err != nil {
			rows.Close()
			return fmt.Errorf("verify %s: %w", t.Name, err)
		}
		srcN++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verify %s: %w", t.Name, err)
	}
	dstSum, dstN := sha256.New(), int64(0)
	prows, err := dst.Query(ctx, selectSQL(t, textCols, true), pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return fmt.Errorf("verify %s: %w", t.Name, err)
	}
	defer prows.Close()
	for prows.Next() {
		row, err := prows.Values()
		if err != nil {
			return fmt.Errorf("verify %s: %w", t.Name, err)
		}
		if err := hashRow(dstSum, row, jsonCol); err != nil {
			return fmt.Errorf("verify %s: %w", t.Name, err)
		}
		dstN++
	}
	if err := prows.Err(); err != nil {
		return fmt.Errorf("verify %s: %w", t.Name, err)
	}
	rep.Target = dstN
	s, d := hex.EncodeToString(srcSum.Sum(nil)), hex.EncodeToString(dstSum.Sum(nil))
	rep.Checksum = d
	if srcN != dstN || s != d {
		return fmt.Errorf("%w: table %s: source %d rows (sha256 %s), target %d rows (sha256 %s)", ErrMismatch, t.Name, srcN, s, dstN, d)
	}
	rep.Verified = true
	return nil
}

// hashRow writes one row in a form both engines' values share: integers of any width alike,
// JSON by value (jsonb reorders and respaces what it stores).
func hashRow(h hash.Hash, row []any, jsonCol map[int]bool) error {
	for i, v := range row {
		if a, ok := v.([]any); ok && !jsonCol[i] { // an int4[] read back by pgx
			ids := make([]int32, len(a))
			for j, e := range a {
				id, ok := e.(int32)
				if !ok {
					return fmt.Errorf("column %d: array of %T", i, e)
				}
				ids[j] = id
			}
			v = ids
		}
		var s string
		switch x := v.(type) {
		case nil:
			s = "N"
		case bool:
			s = fmt.Sprintf("b%t", x)
		case int64:
			s = fmt.Sprintf("i%d", x)
		case int32:
			s = fmt.Sprintf("i%d", x)
		case int16:
			s = fmt.Sprintf("i%d", x)
		case float64:
			s = fmt.Sprintf("f%v", x)
		case float32:
			s = fmt.Sprintf("f%v", float64(x))
		case []byte:
			s = "x" + hex.EncodeToString(x)
		case []int32: // an int4[] converted from SQLite
			s = "a" + fmt.Sprint(x)

		case string:
			if jsonCol[i] {
				var j any
				if err := json.Unmarshal([]byte(x), &j); err != nil {
					return fmt.Errorf("column %d: %w", i, err)
				}
				b, err := json.Marshal(j)
				if err != nil {
					return err
				}
				s = "j" + string(b)
			} else {
				s = fmt.Sprintf("s%q", x)
			}
		default:
			// jsonb read back by pgx: a decoded value.
			if !jsonCol[i] {
				return fmt.Errorf("column %d: unexpected %T", i, v)
			}
			b, err := json.Marshal(x)
			if err != nil {
				return err
			}
			s = "j" + string(b)
		}
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	h.Write([]byte{'\n'})
	return nil
}
