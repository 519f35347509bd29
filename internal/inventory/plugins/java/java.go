// Package java finds Maven packages in Java archives (.jar, .war, .ear and the like, and
// executables that are a shell script followed by a jar), at any depth of nesting.
//
// The walker is Lading's own rather than osv-scalibr's java/archive extractor: that one reads
// every nested archive wholly into memory, stops at 16 levels (images hold jars nested
// deeper), reports limits only as one error for the whole file, and links deps.dev's gRPC
// client into the binary. This one spills large nested archives to the scratch directory,
// bounds each nested archive and the total expansion of a top-level archive, refuses
// overlapping-entry zip bombs, and records each skipped part with its reason.
package java

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
)

const (
	maxPomPropertiesBytes = 64 << 10
	maxManifestBytes      = 1 << 20
	// maxScriptJarBytes bounds the executables searched for a jar behind a script: a large
	// script is not worth buffering to look for a jar at its end.
	maxScriptJarBytes = 64 << 20
	// zipEndProbeBytes is where a zip's end record can be: in its last 64 KiB + 22 bytes.
	zipEndProbeBytes = 64<<10 + 22
)

// New returns the plugin.
func New() plugin.Plugin { return archives{} }

type archives struct{}

func (archives) Name() string { return "lading/java" }
func (archives) Version() int { return 1 }

// FileRequired takes archives by their extension, and executables that start with "#!": a
// "fully executable" jar (Spring Boot's) is a shell script followed by the jar.
func (archives) FileRequired(f plugin.File) bool {
	if isArchiveName(f.Path()) {
		return true
	}
	info, err := f.Stat()
	if err != nil || info.Mode()&0o111 == 0 || info.Size() > maxScriptJarBytes {
		return false
	}
	head, err := f.Head(2)
	return err == nil && string(head) == "#!"
}

func (archives) MaxBytes(l plugin.Limits) int64 { return l.MaxFileBytes }

func (archives) Extract(ctx context.Context, in *plugin.Input) (plugin.Found, error) {
	if !isArchiveName(in.Path) && !hasZipEndRecord(in.Content, in.Content.Size()) {
		return plugin.Found{}, nil // a plain script
	}
	w := &archiveWalk{env: in.Env, lim: in.Env.Limits, remaining: in.Env.Limits.MaxArchiveExpansion}
	return plugin.Found{Packages: w.scan(ctx, in.Content, in.Content.Size(), in.Path, 0)}, nil
}

var archiveExts = [...]string{".jar", ".war", ".ear", ".jmod", ".par", ".sar", ".jpi", ".hpi", ".lpkg", ".nar"}

func isArchiveName(name string) bool {
	ext := path.Ext(name)
	for _, e := range archiveExts {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}

// hasZipEndRecord reports whether the zip end-of-central-directory signature appears where a
// zip's end record can be.
func hasZipEndRecord(ra io.ReaderAt, size int64) bool {
	n := min(size, zipEndProbeBytes)
	tail := make([]byte, n)
	if _, err := ra.ReadAt(tail, size-n); err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	return bytes.Contains(tail, []byte("PK\x05\x06"))
}

// archiveWalk is the state of the walk through one top-level archive.
type archiveWalk struct {
	env       *plugin.Env
	lim       plugin.Limits
	remaining int64 // bytes that nested archives may still expand to
}

func (w *archiveWalk) skip(path, format string, args ...any) {
	w.env.Skip(path, fmt.Sprintf(format, args...))
}

func (w *archiveWalk) scan(ctx context.Context, ra io.ReaderAt, size int64, display string, depth int) []installed.Package {
	lim := w.lim
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		w.skip(display, "not a readable zip archive: %v", err)
		return nil
	}
	if len(zr.File) > lim.MaxArchiveEntries {
		w.skip(display, "archive with %d entries, over the %d-entry limit: not read", len(zr.File), lim.MaxArchiveEntries)
		return nil
	}
	if err := checkZipLayout(zr); err != nil {
		w.skip(display, "%v: not read", err)
		return nil
	}
	var (
		poms       []installed.Package
		mf         manifest
		nested     []installed.Package
		hasClasses bool
	)
	for _, f := range zr.File {
		if ctx.Err() != nil {
			return nil
		}
		name := f.Name
		if strings.HasSuffix(name, ".class") {
			hasClasses = true
		}
		switch {
		case strings.HasPrefix(name, "META-INF/maven/") && path.Base(name) == "pom.properties":
			data, err := readZipEntry(f, maxPomPropertiesBytes)
			if err != nil {
				w.skip(display+"!/"+name, "%v", err)
				continue
			}
			if pkg, ok := parsePomProperties(data); ok {
				poms = append(poms, pkg)
			}
		case strings.EqualFold(name, "META-INF/MANIFEST.MF"):
			data, err := readZipEntry(f, maxManifestBytes)
			if err != nil {
				w.skip(display+"!/"+name, "%v", err)
				continue
			}
			mf = parseManifest(data)
		case isArchiveName(name) && !f.FileInfo().IsDir():
			nested = append(nested, w.nested(ctx, f, display+"!/"+name, depth+1)...)
		}
	}
	own := dedupePackages(poms)
	// Without pom.properties the archive is named after its file name and manifest, but only
	// if it holds code: an archive of archives (a wrapper) is no package of its own.
	if len(own) == 0 && hasClasses {
		if pkg, ok := identifyFromManifestAndName(mf, display); ok {
			own = []installed.Package{pkg}
		}
	}
	for i := range own {
		own[i].Path = display
		own[i].Ecosystem = "Maven"
		own[i].PackageManager = installed.ManagerJAR
		group, artifact, _ := strings.Cut(own[i].Name, ":")
		own[i].PURL = packageurl.NewPackageURL(packageurl.TypeMaven, group, artifact, own[i].Version, nil, "").ToString()
	}
	return append(own, nested...)
}

func (w *archiveWalk) nested(ctx context.Context, f *zip.File, display string, depth int) []installed.Package {
	lim := w.lim
	if depth > lim.MaxArchiveDepth {
		w.skip(display, "archive nested deeper than %d levels: not read", lim.MaxArchiveDepth)
		return nil
	}
	if f.UncompressedSize64 > uint64(lim.MaxNestedArchiveBytes) {
		w.skip(display, "nested archive of %d bytes is over the %d-byte limit: not read", f.UncompressedSize64, lim.MaxNestedArchiveBytes)
		return nil
	}
	if w.remaining <= 0 {
		w.skip(display, "the enclosing archive already expanded to %d bytes: not read", lim.MaxArchiveExpansion)
		return nil
	}
	rc, err := f.Open()
	if err != nil {
		w.skip(display, "nested archive: %v", err)
		return nil
	}
	defer rc.Close()
	max := min(lim.MaxNestedArchiveBytes, w.remaining)
	counted := &countingReader{r: plugin.ContextReader(ctx, rc)}
	b, err := w.env.Buffers.Read(counted, int64(f.UncompressedSize64), max)
	w.remaining -= counted.n
	if err != nil {
		if ctx.Err() == nil {
			w.skip(display, "nested archive: %v", err)
		}
		return nil
	}
	defer b.Close()
	return w.scan(ctx, b, b.Size(), display, depth)
}

// countingReader counts the bytes read, which the expansion budget is charged.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkZipLayout refuses archives whose entries share compressed data (the overlapping-entry
// zip bomb): in a real archive every entry's data lies apart.
func checkZipLayout(zr *zip.Reader) error {
	type span struct{ start, end int64 }
	spans := make([]span, 0, len(zr.File))
	for _, f := range zr.File {
		start, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("entry %q: %w", f.Name, err)
		}
		spans = append(spans, span{start, start + int64(f.CompressedSize64)})
	}
	slices.SortFunc(spans, func(a, b span) int { return compareInt64(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return errors.New("zip entries overlap (an overlapping-entry zip bomb)")
		}
	}
	return nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func readZipEntry(f *zip.File, max int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("%d bytes, over the %d-byte limit: not read", f.UncompressedSize64, max)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("more than %d bytes: not read", max)
	}
	return data, nil
}

// parsePomProperties reads the Maven coordinates from a pom.properties file (Java
// properties syntax; Maven writes simple key=value lines).
func parsePomProperties(data []byte) (installed.Package, bool) {
	props := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 0, 4096), maxPomPropertiesBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	g, a, v := props["groupId"], props["artifactId"], props["version"]
	if !validCoordinate(g) || !validCoordinate(a) || !validCoordinate(v) {
		return installed.Package{}, false
	}
	return installed.Package{Name: g + ":" + a, Version: v}, true
}

func validCoordinate(s string) bool {
	return s != "" && len(s) <= 256 && !strings.ContainsAny(s, " \t${}")
}

type manifest map[string]string

// parseManifest reads the main section of a MANIFEST.MF: "Key: value" lines, continued by
// lines that start with one space.
func parseManifest(data []byte) manifest {
	// Only short values (names, versions) matter here: a value is cut at maxManifestValue, so
	// that a manifest of endless continuation lines costs one linear pass, not a quadratic one.
	const maxManifestValue = 4 << 10
	m := manifest{}
	var key string
	var val []byte
	flush := func() {
		if key != "" {
			m[key] = strings.TrimSpace(string(val))
		}
	}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break // the main section ends at the first blank line
		}
		if line[0] == ' ' && key != "" {
			val = append(val, line[1:min(len(line), 1+max(0, maxManifestValue-len(val)))]...)
			continue
		}
		flush()
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			key, val = "", val[:0]
			continue
		}
		key = strings.TrimSpace(string(k))
		val = append(val[:0], v[:min(len(v), maxManifestValue)]...)
	}
	flush()
	return m
}

// identifyFromManifestAndName is the fallback for archives without pom.properties: the
// artifact and version from the file name, the version from the manifest when the name has
// none, and the group from the manifest (or, as for legacy artifacts such as junit:junit, the
// artifact id).
func identifyFromManifestAndName(mf manifest, display string) (installed.Package, bool) {
	file := display
	if i := strings.LastIndex(file, "!/"); i >= 0 {
		file = file[i+2:]
	}
	artifact, version := nameVersionFromFilename(path.Base(file))
	if artifact == "" {
		return installed.Package{}, false
	}
	if version == "" {
		version = firstNonEmpty(mf["Implementation-Version"], mf["Bundle-Version"])
	}
	if !validCoordinate(version) {
		return installed.Package{}, false
	}
	group := ""
	if g := mf["Implementation-Vendor-Id"]; isReverseDomain(g) {
		group = g
	} else if bsn, _, _ := strings.Cut(mf["Bundle-SymbolicName"], ";"); isReverseDomain(bsn) && strings.HasSuffix(bsn, "."+lastDotPart(artifact)) {
		group = strings.TrimSuffix(bsn, "."+lastDotPart(artifact))
	}
	if !isReverseDomain(group) {
		group = artifact
	}
	return installed.Package{Name: group + ":" + artifact, Version: version}, true
}

func lastDotPart(s string) string {
	if i := strings.LastIndex(s, "."); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Compiled on first use, not at start: every command (`lading scan` too) pays for package
// initialisation, and these serve only some.
var reverseDomain = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$`) })

func isReverseDomain(s string) bool { return len(s) <= 256 && reverseDomain().MatchString(s) }

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

var (
	versionStart       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]`) })
	buildVersionStart  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^build[0-9]`) })
	releaseVersionPart = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^rc?[0-9]+([^a-zA-Z]|$)`) })
)

func looksLikeVersion(s string) bool {
	return versionStart().MatchString(s) || buildVersionStart().MatchString(s) || releaseVersionPart().MatchString(s)
}

// nameVersionFromFilename splits "log4j-core-2.14.1.jar" into ("log4j-core", "2.14.1"): the
// version starts after the first "-" (or "_" or ".") that is followed by a version.
func nameVersionFromFilename(base string) (string, string) {
	name := strings.TrimSuffix(base, path.Ext(base))
	for i, c := range name {
		if c == '-' && looksLikeVersion(name[i+1:]) && i > 0 {
			return name[:i], name[i+1:]
		}
	}
	for _, sep := range []string{"_", "."} {
		if i := strings.Index(name, sep); i > 0 && looksLikeVersion(name[i+1:]) {
			return name[:i], name[i+1:]
		}
	}
	if looksLikeVersion(name) {
		return "", ""
	}
	return name, ""
}

func dedupePackages(pkgs []installed.Package) []installed.Package {
	seen := map[string]bool{}
	out := pkgs[:0]
	for _, p := range pkgs {
		k := p.Name + "@" + p.Version
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}
