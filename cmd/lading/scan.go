package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/imagesrc"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/triage"
	"github.com/lading-registry/lading/internal/vulndb"
)

// scanMemoryLimit is the soft memory limit of `lading scan` (GOMEMLIMIT overrides it).
const scanMemoryLimit = 128 << 20

// scanMemoryBytes is the file content `lading scan` holds in memory at once, split between
// the layers read together; larger files go to scratch files (the kernel's page cache, not the
// process). The server keeps pipeline's 8 MiB. With 2 MiB instead of 8, a scan of debian-base
// peaks about 1 MiB lower for the same CPU time (its executables are what fills the budget).
const scanMemoryBytes = 2 << 20

// scanGCPercent is the GOGC of `lading scan` (the GOGC variable overrides it).
const scanGCPercent = 50

// Exit statuses of `lading scan` besides 0 and --exit-code's: a CI job must tell "vulnerable"
// from "could not tell" from "broken", so each has its own. --exit-code may not take them.
const (
	exitCannotVouch = 2 // the advisory database is empty or older than --max-db-age
	exitScanError   = 3 // the scan did not run or failed: bad flags, no such image, a read error
)

// gzipDecoderHelp is the --gzip-decoder flag's usage, for scan and serve.
const gzipDecoderHelp = "how gzip layers of 1 MiB or more whose content is deflated (not stored) are decompressed: igzip (Intel ISA-L's, Debian's isal package, in a child process: about 3x less CPU), go (in process), or auto (igzip when on PATH, else go)"

// scanExitHelp is the exit statuses as `lading scan --help` and the README give them.
const scanExitHelp = `Exit status:
  0  no finding at or above --fail-on (or --exit-code 0, the default)
  N  findings at or above --fail-on, with --exit-code N (conventionally 1; not 2 or 3)
  2  the advisory database cannot vouch for the result: it is empty, or its newest advisory is
     older than --max-db-age (--allow-stale-db scans anyway, with a warning)
  3  the scan failed: bad flags, no such file or image, an unreadable image or database`

type scanOptions struct {
	common     commonFlags
	format     string
	output     string
	severities []string
	exitCode   int
	failOn     string
	scanners   string
	platform   string
	insecure   bool
	timeout    time.Duration
	registryID string
	region     string
	maxDBAge   time.Duration
	allowStale bool
	ignoreFile string
	vexFiles   []string
	// reachableOnly hides findings none of whose Go packages holds the vulnerable symbols.
	reachableOnly bool
	// includeOSOwned reports language packages an OS package installed on their own too.
	includeOSOwned bool
	gzipDecoder    string
	// cpuProfile and memProfile are where to write profiles of the scan (hidden: for developers).
	cpuProfile, memProfile string
}

func newScanCommand() *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "Scan an image for vulnerable packages",
		Long: "Scan an image: a docker-archive tar (docker save), an OCI image layout (folder or tar; NAME picks one\n" +
			"image of several, as PATH:NAME), or a registry reference (credentials from the docker config).\n" +
			"An argument that looks like a path (starting with /, ./, ../ or ~, or ending in .tar, .tar.gz or .tgz)\n" +
			"is a file, never a reference; docker://REFERENCE forces a reference.\n" +
			"Advisories come from the database in --data-dir (see `lading db import` and `lading db update`).\n" +
			"Packages the scan could not evaluate (a version that does not compare, an advisory range that does not)\n" +
			"are listed and counted in every format: the scan does not call them clean.\n\n" + scanExitHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return exitError{code: exitScanError, err: err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runScan(cmd, args[0], &o)
			if _, ok := errors.AsType[exitError](err); err != nil && !ok {
				return exitError{code: exitScanError, err: err}
			}
			return err
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitError{code: exitScanError, err: err} })
	o.common.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "table", "output format: table, json (ECR DescribeImageScanFindings), sarif, cyclonedx, spdx")
	f.StringVarP(&o.output, "output", "o", "", "write the report to this file instead of standard output")
	f.StringSliceVar(&o.severities, "severity", nil, "report only these severities (CRITICAL,HIGH,MEDIUM,LOW,INFORMATIONAL,UNDEFINED)")
	f.IntVar(&o.exitCode, "exit-code", 0, "exit with this code when findings at or above --fail-on exist")
	f.StringVar(&o.failOn, "fail-on", "LOW", "the lowest severity that makes --exit-code apply")
	f.StringVar(&o.scanners, "scanners", "os,lang", "os (operating-system packages, as BASIC scanning) or os,lang (also language packages, as ENHANCED)")
	f.StringVar(&o.platform, "platform", "", "for a multi-platform image, the os/arch[/variant] to scan (default: the host's)")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS for registry references")
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	f.StringVar(&o.registryID, "registry-id", "000000000000", "registry id shown in the JSON report")
	f.StringVar(&o.region, "region", "us-east-1", "region shown in the JSON report")
	f.DurationVar(&o.maxDBAge, "max-db-age", 7*24*time.Hour, "refuse to scan (exit 2) when the newest advisory is older than this (0: no limit)")
	f.BoolVar(&o.allowStale, "allow-stale-db", false, "scan with an empty or out-of-date advisory database, with a warning, instead of exiting 2")
	f.StringVar(&o.ignoreFile, "ignore-file", "", "leave out the vulnerabilities this file lists: one id per line, optional exp:YYYY-MM-DD and # reason (or Trivy's YAML form)")
	f.StringSliceVar(&o.vexFiles, "vex", nil, "suppress the findings these VEX documents (OpenVEX 0.2 or CycloneDX JSON) say are not_affected or fixed (repeatable)")
	f.BoolVar(&o.includeOSOwned, "include-os-owned", false, "also report on their own the language packages an OS package installed (a Debian python3-xyz's dist-info), which are otherwise reported once, as the OS package naming them")
	f.StringVar(&o.gzipDecoder, "gzip-decoder", inventory.GzipDecoderAuto, gzipDecoderHelp)
	f.BoolVar(&o.reachableOnly, "reachable-only", false, "hide findings whose every package is a Go package whose binary lacks the advisory's vulnerable symbols (reachability ABSENT; UNKNOWN is kept)")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the scan to this file")
	f.StringVar(&o.memProfile, "memprofile", "", "write the heap profile at the heap's peak to this file")
	_ = f.MarkHidden("cpuprofile")
	_ = f.MarkHidden("memprofile")
	return cmd
}

func runScan(cmd *cobra.Command, source string, o *scanOptions) error {
	log, err := o.common.logger(os.Stderr)
	if err != nil {
		return err
	}
	inventory.RouteLibraryLogs(log)
	var mode inventory.Mode
	var scanType string
	switch strings.ReplaceAll(o.scanners, " ", "") {
	case "os":
		mode, scanType = inventory.ModeBasic, policy.ScanTypeBasic
	case "os,lang", "lang,os":
		mode, scanType = inventory.ModeEnhanced, policy.ScanTypeEnhanced
	default:
		return fmt.Errorf("--scanners %q: want os or os,lang", o.scanners)
	}
	for i, s := range o.severities {
		o.severities[i] = strings.ToUpper(s)
		if !slices.Contains(match.Severities(), o.severities[i]) {
			return fmt.Errorf("--severity %q: want one of %s", s, strings.Join(match.Severities(), ", "))
		}
	}
	if o.exitCode == exitCannotVouch || o.exitCode == exitScanError || o.exitCode < 0 || o.exitCode > 125 {
		return fmt.Errorf("--exit-code %d: 2 and 3 are the statuses of a database that cannot vouch and of a failed scan; use 1 (or 4-125)", o.exitCode)
	}
	o.failOn = strings.ToUpper(o.failOn)
	if !slices.Contains(match.Severities(), o.failOn) {
		return fmt.Errorf("--fail-on %q: want one of %s", o.failOn, strings.Join(match.Severities(), ", "))
	}
	// A typing error in the format is worth knowing before a long scan, not after.
	if !slices.Contains(report.Formats(), o.format) {
		return fmt.Errorf("--format %q: want one of %s", o.format, strings.Join(report.Formats(), ", "))
	}
	gzipProgram, err := inventory.GzipProgram(o.gzipDecoder)
	if err != nil {
		return fmt.Errorf("--gzip-decoder: %w", err)
	}
	// Before anything else: a missing file is a typing error to report at once.
	src, err := imagesrc.ParseSource(source)
	if err != nil {
		return err
	}
	// Decisions files are read before the scan too: a typing error in one should not cost a scan.
	triageOpts, err := readTriage(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	prof, err := startProfiles(ctx, o.cpuProfile, o.memProfile)
	if err != nil {
		return err
	}
	defer func() {
		if perr := prof.Stop(); perr != nil {
			log.Warn("write profiles", "error", perr)
		}
	}()

	// A scan holds little at once (layers stream; large files spill to disk), so a soft memory
	// limit keeps the garbage collector from letting the heap double between collections.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(scanMemoryLimit)
	}
	// And a heap that grows by half its live size between collections, not by all of it: on
	// a small image the heap's peak is a fifth of the process's (2-3 MiB less RSS), and the
	// layer scan's reuse of file buffers keeps the extra collections few.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(scanGCPercent)
	}
	// Read-only, one connection, a small page cache: a scan reads, and little.
	meta, err := app.OpenMetaReader(ctx, o.common.dataDir, o.common.metadata, log)
	if err != nil {
		return err
	}
	defer meta.Close()
	vdb := vulndb.New(meta, vulndb.Options{Logger: log})
	// Freshness, not Status: the status summarises every advisory, most of a small scan's time.
	fresh, err := vdb.Freshness(ctx)
	if err != nil {
		return fmt.Errorf("advisory database: %w", err)
	}
	// A scan against an empty or stale database finds nothing it does not know of: its
	// "clean" would be a guess, so it is not made unless asked for.
	if err := fresh.Check(time.Now(), o.maxDBAge); err != nil {
		if !o.allowStale {
			fmt.Fprintf(os.Stderr, "lading: cannot vouch for a scan: %v (data dir %s); --allow-stale-db scans anyway\n", err, o.common.dataDir)
			return exitError{code: exitCannotVouch}
		}
		log.Warn("scanning with an advisory database that cannot vouch for the result (--allow-stale-db)", "reason", err.Error())
	}

	img, err := src.Open(ctx, imagesrc.Options{Platform: o.platform, Insecure: o.insecure})
	if err != nil {
		return err
	}
	defer img.Close()
	scratch, err := os.MkdirTemp("", "lading-scan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	layers := pipelineLayers(img)
	progress := newLayerProgress(os.Stderr, layers)
	scanner := pipeline.Scanner{MemoryBytes: scanMemoryBytes, Mode: mode, ScratchDir: scratch, Logger: log, Progress: progress.layer, LayerDone: progress.layerDone,
		KeepOSOwned: o.includeOSOwned, GzipProgram: gzipProgram}
	// Only the advisories of the packages found are loaded, not the whole database.
	advisories := pipeline.AdvisoriesFunc(func(ctx context.Context, keys []advisory.PackageKey) (match.Advisories, error) {
		// The layers are read: what their buffers and parsers left in the heap is garbage.
		// Collected and handed back to the kernel now, the pages are not resident still while
		// matching and the report fill the heap again (the end of a scan is where its peak
		// is): about 0.6 MiB of go-app's peak RSS, for one collection of about a millisecond.
		debug.FreeOSMemory()
		return vdb.IndexFor(ctx, keys)
	})
	res, err := scanner.Scan(ctx, layers, advisories)
	progress.finish()
	if err != nil {
		return err
	}
	for _, s := range res.Skipped {
		log.Debug("skipped", "path", s.Path, "layer", s.Layer, "reason", s.Reason)
	}
	triageOpts.Image, triageOpts.Now = triage.ImageIDs(img.Name, img.ManifestDigest), time.Now()
	decided := triage.Apply(res.Findings, triageOpts)
	for _, r := range decided.Expired {
		log.Warn("ignore rule expired: the finding is reported", "id", r.ID, "expired", r.Expires.Format(time.DateOnly), "file", o.ignoreFile, "line", r.Line)
	}
	findings := decided.Findings
	if len(o.severities) > 0 {
		findings = slices.DeleteFunc(findings, func(f match.Finding) bool { return !slices.Contains(o.severities, f.Severity) })
	}
	unreachable := 0
	if o.reachableOnly {
		n := len(findings)
		findings = slices.DeleteFunc(findings, match.Finding.Unreachable)
		unreachable = n - len(findings)
	}

	out := cmd.OutOrStdout()
	if o.output != "" {
		f, err := os.Create(o.output)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	scan := &report.Scan{Image: report.Image{Name: img.Name, ManifestDigest: img.ManifestDigest}, ScanType: scanType,
		Inventory: res.Image, Findings: findings, NotEvaluated: res.NotEvaluated, Suppressed: decided.Suppressed, Ignored: len(decided.Ignored),
		Unreachable: unreachable}
	if img.Config != nil {
		scan.Image.Architecture, scan.Image.Author, scan.Image.Created = img.Config.Architecture, img.Config.Author, img.Config.Created.Time
	}
	// Matching is done: the advisories loaded and its working memory are garbage. Handed back
	// now, their pages are not resident still while the report is encoded, the scan's last
	// and highest peak (0.4-0.6 MiB of a small image's peak RSS, no change in time).
	debug.FreeOSMemory()
	if err := report.Write(out, o.format, scan, report.Options{ToolVersion: version, RegistryID: o.registryID, Region: o.region}); err != nil {
		return err
	}
	if o.exitCode != 0 {
		for _, f := range findings {
			if match.SeverityRank(f.Severity) <= match.SeverityRank(o.failOn) {
				return exitError{code: o.exitCode}
			}
		}
	}
	return nil
}

// readTriage reads the ignore file and the VEX documents the flags name.
func readTriage(o *scanOptions) (triage.Options, error) {
	var to triage.Options
	if o.ignoreFile != "" {
		b, err := os.ReadFile(o.ignoreFile)
		if err != nil {
			return to, fmt.Errorf("--ignore-file: %w", err)
		}
		if to.Ignore, err = triage.ParseIgnoreFile(b); err != nil {
			return to, fmt.Errorf("--ignore-file %s: %w", o.ignoreFile, err)
		}
	}
	for _, path := range o.vexFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			return to, fmt.Errorf("--vex: %w", err)
		}
		v, err := triage.ParseVEX(path, b)
		if err != nil {
			return to, fmt.Errorf("--vex: %w", err)
		}
		if to.VEX == nil {
			to.VEX = v
		} else {
			to.VEX.Merge(v)
		}
	}
	return to, nil
}

// pipelineLayers are the image's layers as the scan pipeline reads them.
func pipelineLayers(img *imagesrc.Image) []pipeline.Layer {
	out := make([]pipeline.Layer, len(img.Layers))
	for i, l := range img.Layers {
		out[i] = pipeline.Layer{Digest: l.Digest, Size: l.Size, CreatedBy: l.CreatedBy, Content: l}
	}
	return out
}

// layerProgress draws one line on a terminal while layers are read: the layers done, the
// bytes read of all layers, and the packages found so far. It draws nothing when standard
// error is not a terminal, so logs and CI output stay clean, and it clears its line when done.
// Layers are read concurrently, so its state is behind a mutex.
type layerProgress struct {
	w     io.Writer
	tty   bool
	total int
	// size is the sum of the layers' sizes (those known).
	size int64

	mu       sync.Mutex
	done     int
	read     int64
	packages int
	last     time.Time
	// langPackages and osPackages (by database path, with the layer index of the copy
	// counted) make up packages.
	langPackages int
	osPackages   map[string]osCount
}

type osCount struct{ layer, packages int }

func newLayerProgress(w *os.File, layers []pipeline.Layer) *layerProgress {
	p := &layerProgress{w: w, tty: term.IsTerminal(int(w.Fd())), total: len(layers)}
	for _, l := range layers {
		p.size += max(l.Size, 0)
	}
	return p
}

// layer counts what is read of layer i through r.
func (p *layerProgress) layer(i int, l pipeline.Layer, r io.Reader) io.Reader {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(true)
	return &progressReader{r: r, p: p}
}

// layerDone adds the packages a layer holds. An OS package database is written whole by each
// layer that changes it, so the copy of the highest layer counts, not their sum (layers finish
// in any order).
func (p *layerProgress) layerDone(i int, _ pipeline.Layer, li *inventory.LayerInventory) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.langPackages += len(li.Packages)
	for _, db := range li.OSDatabases {
		if p.osPackages == nil {
			p.osPackages = map[string]osCount{}
		}
		if c, ok := p.osPackages[db.Path]; !ok || c.layer <= i {
			p.osPackages[db.Path] = osCount{layer: i, packages: len(db.Packages)}
		}
	}
	p.packages = p.langPackages
	for _, c := range p.osPackages {
		p.packages += c.packages
	}
	p.draw(true)
}

// draw is called with p.mu held.
func (p *layerProgress) draw(force bool) {
	if !p.tty || (!force && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = time.Now()
	size := humanize.IBytes(uint64(p.read))
	if p.size > 0 {
		size += " / " + humanize.IBytes(uint64(p.size))
	}
	fmt.Fprintf(p.w, "\r\033[Kreading layers: %d/%d done  %s  %s  %d packages", p.done, p.total, size, bar(p.read, p.size, 30), p.packages)
}

func (p *layerProgress) finish() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func bar(n, total int64, width int) string {
	if total <= 0 {
		return ""
	}
	k := int(min(total, n) * int64(width) / total)
	return "[" + strings.Repeat("#", k) + strings.Repeat(".", width-k) + "]"
}

type progressReader struct {
	r io.Reader
	p *layerProgress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.mu.Lock()
	pr.p.read += int64(n)
	pr.p.draw(false)
	pr.p.mu.Unlock()
	return n, err
}
