package scanning

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/store"
)

// Finding statuses, as Inspector names them. The store keeps ACTIVE or CLOSED;
// FindingSuppressed is how an ACTIVE finding a suppression rule matches shows.
const (
	FindingActive     = "ACTIVE"
	FindingClosed     = "CLOSED"
	FindingSuppressed = "SUPPRESSED"
)

// InspectorStatus is a stored finding's status as Inspector shows it.
func InspectorStatus(f store.Finding) string {
	if f.Status == FindingActive && f.Suppressed {
		return FindingSuppressed
	}
	return f.Status
}

// ImageInfo is what a finding says about the image it is in.
type ImageInfo struct {
	Architecture string `json:"architecture,omitempty"`
	Author       string `json:"author,omitempty"`
	Platform     string `json:"platform,omitempty"`
}

// Detail is the JSON a stored finding carries: the match and the image facts needed to render
// it as ECR and Inspector show findings.
type Detail struct {
	Finding match.Finding `json:"finding"`
	Image   ImageInfo     `json:"image"`
}

// FindingARN names a new finding of one repository image (a finding keeps the ARN it was
// first given: diffTouched). Its key, 16 bytes as hex, begins with two bytes of the
// vulnerability's hash: the findings one advisory opens in thousands of images are then
// neighbours in an index of ARN keys (SQLite's finding_rows_arn orders them by their first four
// bytes) rather than at thousands of random places, each a page to read, split and write back.
// The other 14 bytes, of the image and the vulnerability, tell the findings apart.
func FindingARN(origin events.Origin, repo, dgst, scanType, vulnID string) string {
	return findingARNPrefix(origin) + findingARNKey(repo, dgst, scanType, vulnID)
}

// arnVulnerabilityBytes is how many bytes of a finding's ARN key its vulnerability alone
// decides: 65,536 groups, so that a lookup by the key's first four bytes still meets few
// findings of other images (a vulnerability held by a million images: about 15).
const arnVulnerabilityBytes = 2

func findingARNKey(repo, dgst, scanType, vulnID string) string {
	byVuln := sha256.Sum256([]byte(scanType + "\x00" + vulnID))
	sum := sha256.Sum256([]byte(repo + "\x00" + dgst + "\x00" + scanType + "\x00" + vulnID))
	var key [16]byte
	copy(key[:], byVuln[:arnVulnerabilityBytes])
	copy(key[arnVulnerabilityBytes:], sum[:])
	return hex.EncodeToString(key[:])
}

// findingARNPrefix is what the ARNs of one account and region share; the rest depends only on
// the finding's image and vulnerability.
func findingARNPrefix(origin events.Origin) string {
	return "arn:aws:inspector2:" + origin.Region + ":" + origin.Account + ":finding/"
}

// fingerprintBytes is how much of a detail's SHA-256 a fingerprint keeps: it only tells one
// finding's details apart from its previous one, so 8 bytes are plenty (issue 15: it is
// stored in every finding row).
const fingerprintBytes = 8

// FindingFingerprint is the fingerprint of a finding's detail: the first 8 bytes of its
// SHA-256, as 16 lowercase hex digits. A change makes the finding updated.
func FindingFingerprint(detail []byte) string {
	sum := sha256.Sum256(detail)
	return hex.EncodeToString(sum[:fingerprintBytes])
}

// SameFingerprint reports whether stored, a finding's fingerprint as stored, is fp. A stored
// fingerprint of the whole SHA-256 (64 hex digits, written before fingerprints were shortened:
// by a node not yet upgraded, or left by a migration not yet run) is the same when fp begins it,
// so that an upgrade does not make every finding look updated.
func SameFingerprint(stored, fp string) bool {
	if len(stored) == 2*sha256.Size && len(fp) == 2*fingerprintBytes {
		return stored[:len(fp)] == fp
	}
	return stored == fp
}

// diffFindings compares the stored findings of an image with a fresh match. It returns the rows
// to write and those that changed in a way worth an event: new findings (ACTIVE), changed ones
// (new detail, updatedAt moves), reopened ones, and findings no longer matched (CLOSED).
// An unchanged ACTIVE finding only has its lastObservedAt moved.
func diffFindings(t store.ScanTarget, cur []store.Finding, next []match.Finding, info ImageInfo, origin events.Origin, now time.Time) (writes []store.Finding, changed []changedFinding, err error) {
	return diffTouched(t, cur, next, nil, info, origin, now)
}

// diffTouched is diffFindings when next is the fresh match of only the vulnerabilities in
// touched (nil: of all): a stored ACTIVE finding of another vulnerability is known to be
// unchanged and is written as diffFindings writes an unchanged finding, without rebuilding
// its detail.
func diffTouched(t store.ScanTarget, cur []store.Finding, next []match.Finding, touched map[string]bool, info ImageInfo, origin events.Origin,
	now time.Time) (writes []store.Finding, changed []changedFinding, err error) {
	// A re-evaluation matches few vulnerabilities against many stored findings: look those
	// few up in cur rather than indexing all of it.
	var old map[string]store.Finding
	if len(next) > 8 {
		old = make(map[string]store.Finding, len(cur))
		for _, f := range cur {
			old[f.VulnerabilityID] = f
		}
	}
	prevOf := func(id string) (store.Finding, bool) {
		if old != nil {
			f, ok := old[id]
			return f, ok
		}
		for _, f := range cur {
			if f.VulnerabilityID == id {
				return f, true
			}
		}
		return store.Finding{}, false
	}
	writes = make([]store.Finding, 0, len(next)+len(cur))
	arnPrefix := findingARNPrefix(origin)
	seen := make(map[string]bool, len(next))
	for _, m := range next {
		seen[m.VulnerabilityID] = true
		built := &Detail{Finding: m, Image: info}
		detail, err := json.Marshal(built)
		if err != nil {
			return nil, nil, err
		}
		fp := FindingFingerprint(detail)
		prev, ok := prevOf(m.VulnerabilityID)
		arn := prev.ARN // however it was made: a finding keeps its ARN
		if !ok || !strings.HasPrefix(arn, arnPrefix) {
			arn = FindingARN(origin, t.Repository, t.Digest, t.ScanType, m.VulnerabilityID)
		}
		f := store.Finding{Repository: t.Repository, Digest: t.Digest, ScanType: t.ScanType, VulnerabilityID: m.VulnerabilityID,
			ARN: arn, Status: FindingActive, Severity: m.Severity, Fingerprint: fp, PackageKeys: findingKeys(m), Detail: detail,
			FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}
		if m.Score != nil {
			f.Score = *m.Score
		}
		switch {
		case !ok:
			changed = append(changed, changedFinding{f, built})
		case prev.Status == FindingActive && SameFingerprint(prev.Fingerprint, fp):
			f.FirstObservedAt, f.UpdatedAt = prev.FirstObservedAt, prev.UpdatedAt
		default: // changed, or reopened
			f.FirstObservedAt = prev.FirstObservedAt
			changed = append(changed, changedFinding{f, built})
		}
		writes = append(writes, f)
	}
	for _, f := range cur {
		if seen[f.VulnerabilityID] || f.Status == FindingClosed {
			continue
		}
		if touched != nil && !touched[f.VulnerabilityID] {
			// Its match would rebuild the stored detail byte for byte (same fingerprint).
			f.Repository, f.Digest, f.ScanType = t.Repository, t.Digest, t.ScanType
			if !strings.HasPrefix(f.ARN, arnPrefix) { // the account or region changed since
				f.ARN = FindingARN(origin, t.Repository, t.Digest, t.ScanType, f.VulnerabilityID)
			}
			f.LastObservedAt = now
			writes = append(writes, f)
			continue
		}
		f.Status, f.UpdatedAt = FindingClosed, now
		writes = append(writes, f)
		changed = append(changed, changedFinding{Finding: f})
	}
	return writes, changed, nil
}

// changedFinding is a finding a diff changed, with the detail the diff built for it (nil for
// a finding it closed, whose detail is the stored one): its event is made from that, rather
// than from the detail's JSON decoded again (a re-evaluation makes thousands of events).
type changedFinding struct {
	store.Finding
	built *Detail
}

// event builds the "Inspector2 Finding" event of the finding.
func (c changedFinding) event(origin events.Origin, m store.Manifest) (store.OutboxEvent, error) {
	if c.built == nil {
		return findingEvent(origin, c.Finding, m)
	}
	return origin.InspectorFinding(EventFinding(c.Finding, *c.built, m))
}

// findingKeys are the advisory keys of a finding's packages, sorted and distinct: what decides
// whether a change of advisories touches the finding.
func findingKeys(m match.Finding) []store.PackageKey {
	pkgs := make([]inventory.Package, len(m.Packages))
	for i, vp := range m.Packages {
		pkgs[i] = packageOf(vp)
	}
	keys := packageKeys(pkgs)
	slices.SortFunc(keys, func(a, b store.PackageKey) int {
		return cmp.Or(strings.Compare(a.Ecosystem, b.Ecosystem), strings.Compare(a.Name, b.Name))
	})
	return keys
}

// loadDetails reads the detail of the stored findings of st that want selects and that were
// read without it.
func loadDetails(ctx context.Context, st *store.ScanState, want func(store.Finding) bool) error {
	var ids []string
	for _, f := range st.Findings {
		if f.Detail == nil && want(f) {
			ids = append(ids, f.VulnerabilityID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if st.Details == nil {
		return errors.New("finding details are not readable here")
	}
	details, err := st.Details(ctx, ids)
	if err != nil {
		return fmt.Errorf("read finding details: %w", err)
	}
	for i := range st.Findings {
		if d, ok := details[st.Findings[i].VulnerabilityID]; ok && st.Findings[i].Detail == nil {
			st.Findings[i].Detail = d
		}
	}
	return nil
}

// closingDetails loads the detail of the stored ACTIVE findings that diffTouched will close,
// given the fresh match next of the vulnerabilities in touched (nil: all): their events show
// them.
func closingDetails(ctx context.Context, st *store.ScanState, next []match.Finding, touched map[string]bool) error {
	matched := make(map[string]bool, len(next))
	for _, m := range next {
		matched[m.VulnerabilityID] = true
	}
	return loadDetails(ctx, st, func(f store.Finding) bool {
		return f.Status == FindingActive && !matched[f.VulnerabilityID] && (touched == nil || touched[f.VulnerabilityID])
	})
}

// withSuppression returns changed with each finding's suppression as the store applied it to
// the findings written.
func withSuppression(changed []changedFinding, written []store.Finding) []changedFinding {
	suppressed := make(map[string]bool, len(written))
	for _, f := range written {
		if f.Suppressed {
			suppressed[f.VulnerabilityID] = true
		}
	}
	out := make([]changedFinding, len(changed))
	for i, f := range changed {
		f.Suppressed = suppressed[f.VulnerabilityID]
		out[i] = f
	}
	return out
}

// AnnounceListed returns what builds the "Inspector2 Finding" events of listed findings whose
// status changed outside a scan (a suppression rule changed).
func AnnounceListed(origin events.Origin) func([]findings.Listed) ([]store.OutboxEvent, error) {
	return func(ls []findings.Listed) ([]store.OutboxEvent, error) {
		out := make([]store.OutboxEvent, 0, len(ls))
		for _, l := range ls {
			ev, err := findingEvent(origin, l.Finding, l.Manifest)
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		return out, nil
	}
}

// findingEvent builds the "Inspector2 Finding" event of a stored finding.
func findingEvent(origin events.Origin, f store.Finding, m store.Manifest) (store.OutboxEvent, error) {
	if f.Detail == nil {
		return store.OutboxEvent{}, fmt.Errorf("finding %s: detail not loaded", f.VulnerabilityID)
	}
	d, err := DecodeDetail(f)
	if err != nil {
		return store.OutboxEvent{}, err
	}
	return origin.InspectorFinding(EventFinding(f, d, m))
}

// EventFinding converts a stored finding to the events package's shape.
func EventFinding(f store.Finding, d Detail, m store.Manifest) events.Finding {
	mf := d.Finding
	source := mf.Source
	if source == "" {
		source = "OSV"
	}
	severity := f.Severity
	if severity == "UNDEFINED" {
		severity = "UNTRIAGED" // Inspector's name for a finding without a rating
	}
	ef := events.Finding{
		ARN: f.ARN, Title: mf.Title, Description: mf.Description, Severity: severity, Status: InspectorStatus(f),
		FirstObservedAt: f.FirstObservedAt, LastObservedAt: f.LastObservedAt, UpdatedAt: f.UpdatedAt,
		FixAvailable: mf.FixAvailable(), ExploitAvailable: "NO",
		Remediation: events.Remediation{Text: remediationText(mf)},
		Vulnerability: events.Vulnerability{
			ID: mf.VulnerabilityID, Source: source, SourceURL: mf.SourceURL, VendorSeverity: mf.VendorSeverity,
			VendorCreatedAt: mf.Published, VendorUpdatedAt: mf.Modified, RelatedVulnerabilities: mf.Related,
			ReferenceURLs: mf.ReferenceURLs,
		},
		Image: events.Image{Repository: f.Repository, Digest: f.Digest, Tags: m.Tags, PushedAt: m.PushedAt,
			Author: d.Image.Author, Architecture: d.Image.Architecture, Platform: d.Image.Platform},
	}
	if mf.Score != nil {
		ef.InspectorScore = *mf.Score
		if mf.CVSSVector != "" {
			ef.InspectorScoreDetails = &events.AdjustedCVSS{ScoreSource: mf.CVSSSource, CVSSSource: mf.CVSSSource,
				Version: mf.CVSSVersion, Score: *mf.Score, ScoringVector: mf.CVSSVector}
		}
	}
	for _, c := range mf.CVSS {
		ef.Vulnerability.CVSS = append(ef.Vulnerability.CVSS, events.CVSS{BaseScore: c.BaseScore, ScoringVector: c.Vector, Version: c.Version, Source: mf.Source})
	}
	for _, p := range mf.Packages {
		ef.Vulnerability.Packages = append(ef.Vulnerability.Packages, events.VulnerablePackage{
			Name: p.Name, Version: p.Version, Epoch: p.Epoch, Release: p.Release, Arch: p.Arch, PackageManager: p.PackageManager,
			FilePath: p.FilePath, FixedInVersion: p.FixedInVersion, Remediation: p.Remediation, SourceLayerHash: p.Layer})
	}
	return ef
}

// remediationText is the finding-level recommendation.
func remediationText(f match.Finding) string {
	for _, p := range f.Packages {
		if p.Remediation != "" {
			return p.Remediation
		}
	}
	return "None Provided"
}

// RemediationText is the finding-level recommendation shown by the API.
func RemediationText(f match.Finding) string { return remediationText(f) }

// severityCounts tallies the ACTIVE findings by severity (suppressed ones are left out, as
// Inspector leaves them out of ECR's counts).
func severityCounts(fs []store.Finding) map[string]int {
	out := map[string]int{}
	for _, f := range fs {
		if InspectorStatus(f) == FindingActive {
			out[f.Severity]++
		}
	}
	return out
}

// ErrCorrupt wraps a stored row of a scan (a finding's detail, a not-evaluated list) that does
// not decode: a fault of the server, reported with the row it is in, never skipped.
var ErrCorrupt = errors.New("stored scan data does not decode")

// DecodeDetail decodes a stored finding's detail; an error names the row (repository, digest,
// scan type, vulnerability id) and wraps ErrCorrupt.
func DecodeDetail(f store.Finding) (Detail, error) {
	var d Detail
	if err := json.Unmarshal(f.Detail, &d); err != nil {
		return d, fmt.Errorf("%w: detail of finding %s of the %s scan of %s@%s: %w", ErrCorrupt, f.VulnerabilityID, f.ScanType, f.Repository, f.Digest, err)
	}
	return d, nil
}

func detailOf(f store.Finding) (Detail, bool) {
	d, err := DecodeDetail(f)
	return d, err == nil
}
