package main

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The scanning peer, pinned (peers-setup.md). v2.6.0 needs Go 1.27: the go command fetches that
// toolchain from the proxy to build it, without touching this module's go directive.
const (
	osvModule    = "github.com/google/osv-scanner/v2/cmd/osv-scanner"
	osvVersion   = "v2.6.0"
	osvToolchain = "go1.27.3"
)

// Both scanners are built as osv-scanner's releases are (its .goreleaser.yaml): without cgo,
// trimmed paths, no symbol table or DWARF. A cgo build links the C library, whose pages and
// allocations are about 2 MiB of a small scan's peak RSS, for Lading and osv-scanner alike.
const releaseEnv = "CGO_ENABLED=0"

// releaseArgs are the arguments of `go build` or `go install` (its first) for a release build.
func releaseArgs(command string, rest ...string) []string {
	return append([]string{command, "-trimpath", "-ldflags=-s -w"}, rest...)
}

// releaseBuilt reports whether the Go binary at path was built as releaseEnv and releaseArgs say:
// its build information records no cgo and -trimpath (which leaves -ldflags out of it), and it
// has no symbol table (-s).
func releaseBuilt(ctx context.Context, path string) bool {
	info, err := output(ctx, "", nil, "go", "version", "-m", path)
	if err != nil {
		return false
	}
	var cgoOff, trimmed bool
	for line := range strings.SplitSeq(info, "\n") {
		switch strings.Join(strings.Fields(line), " ") {
		case "build CGO_ENABLED=0":
			cgoOff = true
		case "build -trimpath=true":
			trimmed = true
		}
	}
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return cgoOff && trimmed && f.Section(".symtab") == nil
}

// bench holds one run's state.
type bench struct {
	cfg       config
	work      string
	lading    string // binary
	osv       string // binary
	osvVer    string // what osv-scanner --version says
	ladingRev string
	ladingDB  string // lading --data-dir
	osvDB     string // OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY
	tmp       string // TMPDIR of the scanners (both unpack into it)
	importDur time.Duration
	loadStart string
	loadEnd   string
	bigInfo   bigImageInfo
	aptInfo   bigImageInfo
	// aptSkipped says why the apt-like image is not in the run.
	aptSkipped string
	warm       *warmResult
	tput       *throughputResult
	results    []imageResult
}

func output(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(stderr.String(), 10))
	}
	return strings.TrimSpace(string(out)), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// goBinDir is where `go install` puts binaries.
func goBinDir(ctx context.Context) (string, error) {
	if bin, err := output(ctx, "", nil, "go", "env", "GOBIN"); err != nil || bin != "" {
		return bin, err
	}
	gopath, err := output(ctx, "", nil, "go", "env", "GOPATH")
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.SplitList(gopath)[0], "bin"), nil
}

// osvScanner returns an osv-scanner binary that reports the pinned version, installing it when
// none does.
func osvScanner(ctx context.Context, explicit string) (path, version string, err error) {
	check := func(p string) (string, bool) {
		out, err := output(ctx, "", nil, p, "--version")
		first, _, _ := strings.Cut(out, "\n")
		return strings.TrimSpace(first), err == nil && strings.Contains(out, strings.TrimPrefix(osvVersion, "v"))
	}
	if explicit != "" {
		v, ok := check(explicit)
		if !ok {
			return "", "", fmt.Errorf("%s does not report version %s", explicit, osvVersion)
		}
		return explicit, v, nil
	}
	gobin, err := goBinDir(ctx)
	if err != nil {
		return "", "", err
	}
	candidates := []string{filepath.Join(gobin, "osv-scanner")}
	if p, err := exec.LookPath("osv-scanner"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if v, ok := check(c); ok && releaseBuilt(ctx, c) {
			return c, v, nil
		}
	}
	progress("installing %s@%s with %s, built as its releases are", osvModule, osvVersion, osvToolchain)
	env := []string{"GOTOOLCHAIN=" + osvToolchain, releaseEnv}
	if _, err := output(ctx, "", env, "go", releaseArgs("install", osvModule+"@"+osvVersion)...); err != nil {
		return "", "", err
	}
	p := filepath.Join(gobin, "osv-scanner")
	if v, ok := check(p); ok {
		return p, v, nil
	}
	return "", "", fmt.Errorf("installed %s@%s but %s does not report that version", osvModule, osvVersion, p)
}

// setup builds Lading, finds osv-scanner and gives each the same OSV data: Lading's database is
// imported from testdata/osv, and osv-scanner's offline cache links the same all.zip files.
func (b *bench) setup(ctx context.Context) error {
	var err error
	b.tmp = filepath.Join(b.work, "tmp")
	if err := os.MkdirAll(b.tmp, 0o755); err != nil {
		return err
	}
	b.lading = b.cfg.ladingBin
	if b.lading == "" {
		progress("building lading from %s", b.cfg.repo)
		b.lading = filepath.Join(b.work, "lading")
		if _, err := output(ctx, b.cfg.repo, []string{releaseEnv}, "go", releaseArgs("build", "-o", b.lading, "./cmd/lading")...); err != nil {
			return err
		}
	}
	if rev, err := output(ctx, b.cfg.repo, nil, "git", "describe", "--always", "--dirty"); err == nil {
		b.ladingRev = rev
	}
	if b.osv, b.osvVer, err = osvScanner(ctx, b.cfg.osvBin); err != nil {
		return err
	}
	for _, bin := range []string{b.lading, b.osv} {
		if err := evictFromPageCache(bin); err != nil {
			return err
		}
	}
	osvData := filepath.Join(b.cfg.shared, "osv")
	b.ladingDB = filepath.Join(b.work, "lading-data")
	progress("lading db import %s", osvData)
	start := time.Now()
	if _, err := output(ctx, "", nil, b.lading, "db", "import", "--data-dir", b.ladingDB, osvData); err != nil {
		return err
	}
	b.importDur = time.Since(start)

	// osv-scanner reads <root>/osv-scalibr/<Ecosystem>/all.zip (peers-setup.md).
	b.osvDB = filepath.Join(b.work, "osv-db")
	zips, err := filepath.Glob(filepath.Join(osvData, "*", "all.zip"))
	if err != nil {
		return err
	}
	if len(zips) == 0 {
		return fmt.Errorf("no <Ecosystem>/all.zip in %s", osvData)
	}
	for _, z := range zips {
		dir := filepath.Join(b.osvDB, "osv-scalibr", filepath.Base(filepath.Dir(z)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.Symlink(z, filepath.Join(dir, "all.zip")); err != nil {
			return err
		}
	}
	return nil
}
