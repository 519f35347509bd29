// Package report writes the result of scanning one image: a table for people, ECR's
// DescribeImageScanFindings JSON (the shape the ECR face answers with, defined here), SARIF
// for code-scanning dashboards, and CycloneDX and SPDX SBOMs. `lading scan` and the server use
// it.
package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/triage"
)

// Scan is what a report shows of one image's scan.
type Scan struct {
	Image Image
	// ScanType is policy.ScanTypeBasic or policy.ScanTypeEnhanced: which of ECR's shapes the
	// JSON report takes.
	ScanType  string
	Inventory *inventory.Image
	Findings  []match.Finding
	// NotEvaluated is what the scan could not evaluate (versions that do not compare,
	// advisories whose ranges do not): every report says so, so that none reads as clean.
	NotEvaluated []match.NotEvaluated
	// Suppressed are the findings, or packages of findings, that VEX statements take out;
	// reports show them as suppressed, with why.
	Suppressed []triage.Suppressed
	// Ignored counts the findings an ignore file left out.
	Ignored int
	// Unreachable counts the findings left out because none of their Go packages holds the
	// vulnerable symbols (`lading scan --reachable-only`).
	Unreachable int
}

// Image names the scanned image.
type Image struct {
	// Name is what the image was picked by (a reference, an OCI ref name), if anything; the
	// JSON report takes its repository and tag from it.
	Name           string
	ManifestDigest string
	Architecture   string
	Author         string
	// Created is when the image was built (its config's created): the JSON report's pushedAt.
	Created time.Time
}

// Options are what a report says beyond the scan.
type Options struct {
	// ToolVersion is Lading's version, named by SARIF, CycloneDX and SPDX.
	ToolVersion string
	// RegistryID and Region are what the JSON report names the registry by.
	RegistryID string
	Region     string
	// Now is when the report is made (the zero time: the current time).
	Now time.Time
	// CycloneDXVersion is the CycloneDX spec version written (0: 1.6); Inspector's SBOM
	// exports are 1.4.
	CycloneDXVersion cdx.SpecVersion
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now().UTC()
	}
	return o.Now.UTC()
}

// ErrUnknownFormat is returned by Write for a format it does not know.
var ErrUnknownFormat = errors.New("unknown report format")

// Formats are the formats Write knows, the default first.
func Formats() []string { return []string{"table", "json", "sarif", "cyclonedx", "spdx"} }

// Write writes the report of s in a format of Formats.
func Write(w io.Writer, format string, s *Scan, o Options) error {
	switch format {
	case "table":
		return Table(w, s)
	case "json":
		return JSON(w, s, o)
	case "sarif":
		return SARIF(w, s, o)
	case "cyclonedx":
		return CycloneDX(w, s, o)
	case "spdx":
		return SPDX(w, s, o)
	}
	return fmt.Errorf("%w %q: want one of %s", ErrUnknownFormat, format, strings.Join(Formats(), ", "))
}

// repository is the image's repository name as the JSON report gives it:
// "corpus/neo4j-like:4.4.0" -> "corpus/neo4j-like"; a registry host stays out.
func (img Image) repository() string {
	name := img.Name
	if name == "" {
		name = "image"
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	if i := strings.Index(name, "/"); i > 0 && strings.ContainsAny(name[:i], ".:") {
		name = name[i+1:]
	}
	return strings.ToLower(name)
}

// tag is the tag the image was picked by, if any.
func (img Image) tag() string {
	name := img.Name
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[i+1:]
	}
	return ""
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
