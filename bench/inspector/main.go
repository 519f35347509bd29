// Command inspector benchmarks the Inspector2 face's queries on the registry store that
// bench/continuous builds (100,000 images, about 7 million findings, by default): ListFindings,
// ListFindingAggregations and ListCoverage through the face's HTTP handler (decode, query,
// render, encode), first pages and a second page, and prints each figure against its target.
//
// Run it from the repository root:
//
//	go run ./bench/inspector -cache DIR            # builds DIR with bench/continuous if needed (10-20 min)
//	go run ./bench/inspector -cache DIR -images 10000
//	go run ./bench/inspector -store PATH/lading.db # any Lading store
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/bench/internal/machine"
	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/inspector"
	"github.com/lading-registry/lading/internal/kev"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

type config struct {
	cache, store string
	images, runs int
}

func main() {
	var cfg config
	flag.StringVar(&cfg.cache, "cache", "", "bench/continuous cache folder: its store is used, and built there first when missing")
	flag.StringVar(&cfg.store, "store", "", "a Lading store (lading.db) to query instead")
	flag.IntVar(&cfg.images, "images", 100000, "images of the store bench/continuous builds (with -cache)")
	flag.IntVar(&cfg.runs, "runs", 7, "runs of each query after the first (the median is reported)")
	flag.Parse()
	if (cfg.cache == "") == (cfg.store == "") || cfg.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: give one of -cache and -store")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// storePath returns the store to query, building the bench/continuous cache when it holds
// none of this size.
func storePath(ctx context.Context, cfg config, w io.Writer) (string, error) {
	if cfg.store != "" {
		return cfg.store, nil
	}
	raw, err := os.ReadFile(filepath.Join(cfg.cache, "setup.json"))
	var setup struct {
		Flags string `json:"flags"`
	}
	if err == nil && json.Unmarshal(raw, &setup) == nil && strings.Contains(setup.Flags, fmt.Sprintf(" images=%d ", cfg.images)) {
		return filepath.Join(cfg.cache, "lading.db"), nil
	}
	fmt.Fprintf(w, "building the store of %d images with bench/continuous (-cache %s)\n", cfg.images, cfg.cache)
	cmd := exec.CommandContext(ctx, "go", "run", "./bench/continuous", "-cache", cfg.cache, "-images", fmt.Sprint(cfg.images))
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench/continuous: %w", err)
	}
	return filepath.Join(cfg.cache, "lading.db"), nil
}

// trusting accepts every request: the benchmark measures queries, not SigV4.
type trusting struct{}

func (trusting) CheckSigV4Header(*http.Request, auth.SigV4Policy) error { return nil }
func (trusting) VerifySigV4(*http.Request, []byte, auth.SigV4Policy) (auth.SigV4Result, error) {
	return auth.SigV4Result{Principal: auth.Principal{AccessKeyID: "bench"}}, nil
}

type query struct {
	name   string
	path   string                   // "": /findings/list
	body   func(prev []byte) string // prev: the previous query's answer
	target time.Duration            // 0: no target, shown for reference
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	path, err := storePath(ctx, cfg, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Inspector2 benchmark on %s\nmachine: %d CPUs (%s), %s, load average %s\n", path, runtime.NumCPU(), machine.CPUModel(), runtime.Version(), machine.LoadAverage())
	open := time.Now()
	db, err := sqlite.Open(ctx, path) // migrates a store of an older schema (0027 backfills the query columns)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(w, "store opened (and migrated) in %s\n", time.Since(open).Round(time.Millisecond))
	var nFindings, nImages, nRepos int
	r := db.Reader()
	for _, c := range []struct {
		dst *int
		sql string
	}{{&nFindings, "SELECT count(*) FROM findings"}, {&nImages, "SELECT count(*) FROM manifests"}, {&nRepos, "SELECT count(*) FROM repositories"}} {
		if err := r.QueryRowContext(ctx, c.sql).Scan(c.dst); err != nil {
			return err
		}
	}
	// A repository prefix matching a few dozen repositories (one team of bench/continuous's
	// 97), whatever the store: the middle repository's name up to its last '/'.
	var mid string
	if err := r.QueryRowContext(ctx, "SELECT name FROM repositories ORDER BY name LIMIT 1 OFFSET ?", nRepos/2).Scan(&mid); err != nil {
		return err
	}
	prefix := mid
	if i := strings.LastIndex(mid, "/"); i > 0 {
		prefix = mid[:i+1]
	}
	var nPrefix int
	if err := r.QueryRowContext(ctx, "SELECT count(*) FROM repositories WHERE name >= ? AND name < ?", prefix, prefix+"\xff").Scan(&nPrefix); err != nil {
		return err
	}
	var vuln, rare, jarDir string
	_ = r.QueryRowContext(ctx, "SELECT vulnerability_id FROM findings GROUP BY vulnerability_id HAVING count(*) = 1 LIMIT 1").Scan(&rare)
	_ = r.QueryRowContext(ctx, "SELECT vulnerability_id FROM findings WHERE severity = 'CRITICAL' LIMIT 1 OFFSET 1000").Scan(&vuln)
	_ = r.QueryRowContext(ctx, "SELECT file_path FROM finding_packages WHERE file_path LIKE '%/%' LIMIT 1 OFFSET 1000").Scan(&jarDir)
	if i := strings.LastIndex(jarDir, "/"); i > 0 {
		jarDir = jarDir[:i+1]
	}
	fmt.Fprintf(w, "store: %d findings, %d images, %d repositories; prefix %q matches %d repositories\n\n", nFindings, nImages, nRepos, prefix, nPrefix)

	cat, err := kev.Embedded()
	if err != nil {
		return err
	}
	svc := findings.NewService(db, nil, cat, "123456789012", "us-east-1")
	scans := scanning.New(db, nil, nil, scanning.Config{}) // the rescan window (default 14 days), for coverage
	h := inspector.NewHandler(trusting{}, svc, inspector.Config{RegistryID: "123456789012", Region: "us-east-1", Logger: slog.New(slog.DiscardHandler),
		Coverage: findings.NewCoverage(db, scans, "123456789012", "us-east-1"), Scanning: scans})
	str := func(field, cmp, v string) string {
		return fmt.Sprintf(`%q:[{"comparison":%q,"value":%q}]`, field, cmp, v)
	}
	severityPrefix := `{"filterCriteria":{` + str("severity", "EQUALS", "CRITICAL") + "," + str("ecrImageRepositoryName", "PREFIX", prefix) + `},"maxResults":100}`
	queries := []query{
		{"ListFindings severity CRITICAL + repository prefix, first page (100)", "", func([]byte) string { return severityPrefix }, 50 * time.Millisecond},
		{"  the same, second page (nextToken)", "", func(prev []byte) string {
			var out struct {
				NextToken string `json:"nextToken"`
			}
			_ = json.Unmarshal(prev, &out)
			return strings.TrimSuffix(severityPrefix, "}") + `,"nextToken":"` + out.NextToken + `"}`
		}, 50 * time.Millisecond},
		{"ListFindings no filter, first page (25)", "", func([]byte) string { return `{}` }, 0},
		{"ListFindings vulnerabilityId " + vuln + ", first page", "", func([]byte) string {
			return `{"filterCriteria":{` + str("vulnerabilityId", "EQUALS", vuln) + `}}`
		}, 0},
		{"ListFindings vulnerabilityId " + rare + " (in one image), first page", "", func([]byte) string {
			return `{"filterCriteria":{` + str("vulnerabilityId", "EQUALS", rare) + `}}`
		}, 0},
		{"ListFindings vulnerablePackages.filePath PREFIX, first page", "", func([]byte) string {
			return `{"filterCriteria":{"vulnerablePackages":[{"filePath":{"comparison":"PREFIX","value":"` + jarDir + `"}}]}}`
		}, 0},
		{"ListFindings repository prefix, sorted by severity DESC, first page", "", func([]byte) string {
			return `{"filterCriteria":{` + str("ecrImageRepositoryName", "PREFIX", prefix) + `},"sortCriteria":{"field":"SEVERITY","sortOrder":"DESC"}}`
		}, 0},
		{"ListFindingAggregations REPOSITORY over all findings, first page", "/findings/aggregation/list", func([]byte) string {
			return `{"aggregationType":"REPOSITORY"}`
		}, 500 * time.Millisecond},
		{"ListFindingAggregations IMAGE_LAYER, repository prefix", "/findings/aggregation/list", func([]byte) string {
			return `{"aggregationType":"IMAGE_LAYER","aggregationRequest":{"imageLayerAggregation":{` + str("repositories", "PREFIX", prefix) + `}}}`
		}, 0},
		{"ListCoverage first page (100)", "/coverage/list", func([]byte) string { return `{}` }, 50 * time.Millisecond},
		{"ListCoverage scanStatusReason SCAN_ELIGIBILITY_EXPIRED, first page", "/coverage/list", func([]byte) string {
			return `{"filterCriteria":{"scanStatusReason":[{"comparison":"EQUALS","value":"SCAN_ELIGIBILITY_EXPIRED"}]}}`
		}, 0},
		{"ListCoverageStatistics by SCAN_STATUS_REASON (every resource)", "/coverage/statistics/list", func([]byte) string {
			return `{"groupBy":"SCAN_STATUS_REASON"}`
		}, 0},
	}
	fmt.Fprintf(w, "%-70s %10s %10s %10s %8s  %s\n", "query", "first", "median", "max", "results", "target")
	failed := false
	var prev []byte
	for _, q := range queries {
		body := q.body(prev)
		var times []time.Duration
		var n int
		for i := 0; i <= cfg.runs; i++ {
			runtime.GC()
			start := time.Now()
			route := q.path
			if route == "" {
				route = "/findings/list"
			}
			out, err := call(h, route, body)
			times = append(times, time.Since(start))
			if err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			prev = out
			var res struct {
				Findings  []json.RawMessage `json:"findings"`
				Responses []json.RawMessage `json:"responses"`
				Resources []json.RawMessage `json:"coveredResources"`
				Groups    []json.RawMessage `json:"countsByGroup"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			n = len(res.Findings) + len(res.Responses) + len(res.Resources) + len(res.Groups)
		}
		first := times[0]
		rest := slices.Clone(times[1:])
		slices.Sort(rest)
		median := rest[len(rest)/2]
		verdict := "(reference)"
		if q.target > 0 {
			verdict = fmt.Sprintf("< %s: PASS", q.target)
			if median >= q.target {
				verdict, failed = fmt.Sprintf("< %s: FAIL", q.target), true
			}
		}
		fmt.Fprintf(w, "%-70s %10s %10s %10s %8d  %s\n", q.name, round(first), round(median), round(rest[len(rest)-1]), n, verdict)
	}
	fmt.Fprintf(w, "\nmedian of %d runs after the first (which may read pages from disk); load average after: %s\n", cfg.runs, machine.LoadAverage())
	if failed {
		return errors.New("a target was missed")
	}
	return nil
}

func round(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }

// call sends one request through the face's handler.
func call(h http.Handler, path, body string) ([]byte, error) {
	req := httptest.NewRequest(http.MethodPost, "http://bench"+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes(), nil
}
