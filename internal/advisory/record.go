package advisory

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// MaxRecordSize bounds one OSV record. The largest real records (kernel CVEs with long
// version lists) are a few MiB; anything far beyond is hostile or broken input.
const MaxRecordSize = 32 << 20

// ErrInvalidRecord marks an OSV record that cannot be used. vulndb's import and update fail
// on it (unless told to skip invalid records) and leave the database as it was.
var ErrInvalidRecord = errors.New("invalid OSV record")

// Advisory is one OSV record, parsed. Advisories are shared by Index snapshots and must be
// treated as read-only.
type Advisory struct {
	ID        string
	Modified  time.Time
	Published time.Time // zero when the record has none
	Withdrawn time.Time // zero unless withdrawn; withdrawn records never match
	Aliases   []string
	Related   []string
	Upstream  []string
	Summary   string
	Details   string
	// References are the record's links, in its order.
	References []Reference
	// CVSS holds every vector of the record-level severity[] that could be scored.
	CVSS []CVSS
	// Severity is the record-level severity (see SeverityOf); an affected entry may override it.
	Severity Severity
	// VulnerabilityID is the CVE the record is about when id or aliases name one (or, for a
	// distribution record about exactly one upstream CVE, that CVE); otherwise the id.
	VulnerabilityID  string
	DatabaseSpecific json.RawMessage
	Affected         []Affected
	// Hash is the SHA-256 of the compacted JSON, hex: equal hashes mean an unchanged record.
	Hash string

	// Precomputed for Index.Affecting, which builds results from them without allocating.
	otherIDs []string    // identifiers other than VulnerabilityID, sorted
	self     []*Advisory // just this advisory
	selfID   []string    // just its id
	score    *float64    // the severity's score, nil without one
	best     CVSS        // the best vector, for a score when the severity has none
}

// Affected is one affected[] entry.
type Affected struct {
	Ecosystem         string // as the record writes it, e.g. "Debian:12"
	Name              string // as the record writes it
	Purl              string
	Ranges            []Range
	Versions          []string
	EcosystemSpecific json.RawMessage
	DatabaseSpecific  json.RawMessage
	// Severity is set when the entry carries its own severity (package-level severity[] or a
	// severity word in ecosystem_specific/database_specific); nil means the record's applies.
	Severity *Severity
	CVSS     []CVSS
	// Imports are the vulnerable packages of a Go module and their symbols, as the Go
	// vulnerability database writes them (ecosystem_specific.imports); nil when the record
	// names none, for other ecosystems too.
	Imports []GoImport
}

// GoImport is one ecosystem_specific.imports[] entry of a Go advisory: a package of the
// affected module, the functions and methods of it that are vulnerable ("Parse",
// "Tag.String"; none listed means the whole package), and the platforms it is vulnerable on
// (none listed means every one).
type GoImport struct {
	Path    string   `json:"path"`
	Symbols []string `json:"symbols,omitempty"`
	GOOS    []string `json:"goos,omitempty"`
	GOARCH  []string `json:"goarch,omitempty"`
}

// goImports reads ecosystem_specific.imports. A malformed member is read as absent, not as an
// invalid record: it only narrows what is reported (reachability says UNKNOWN without it).
func goImports(raw json.RawMessage) []GoImport {
	if len(raw) == 0 {
		return nil
	}
	var es struct {
		Imports []GoImport `json:"imports"`
	}
	if !decodeGoImports(raw, &es.Imports) {
		es.Imports = nil
		if err := json.Unmarshal(raw, &es); err != nil {
			return nil
		}
	}
	out := es.Imports[:0]
	for _, im := range es.Imports {
		if im.Path = strings.TrimSpace(im.Path); im.Path != "" {
			out = append(out, im)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return slices.Clip(out)
}

// Key is the index key of the affected package.
func (a *Affected) Key() PackageKey { return MakeKey(a.Ecosystem, a.Name) }

// Range is one affected[].ranges[] entry.
type Range struct {
	Type   string // ECOSYSTEM, SEMVER or GIT (others are kept but never match)
	Repo   string
	Events []Event
}

// EventKind is the kind of a range event. The order is the tie-break order for events at
// equal versions: an introduced and a fixed event at one version describe an empty range.
type EventKind uint8

// Event kinds, as OSV names them.
const (
	Introduced EventKind = iota
	LastAffected
	Fixed
	Limit
)

func (k EventKind) String() string {
	switch k {
	case Introduced:
		return "introduced"
	case LastAffected:
		return "last_affected"
	case Fixed:
		return "fixed"
	default:
		return "limit"
	}
}

// Event is one range event.
type Event struct {
	Kind    EventKind
	Version string
}

// Reference is one references[] entry.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Keys returns the distinct package keys the advisory affects, in record order.
func (a *Advisory) Keys() []PackageKey {
	keys := make([]PackageKey, 0, len(a.Affected))
	seen := make(map[PackageKey]bool, len(a.Affected))
	for i := range a.Affected {
		k := a.Affected[i].Key()
		if k.Ecosystem == "" || k.Name == "" || seen[k] {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
	}
	return keys
}

// IsWithdrawn reports whether the record is withdrawn.
func (a *Advisory) IsWithdrawn() bool { return !a.Withdrawn.IsZero() }

// identifiers returns id, aliases and the derived vulnerability id: what alias merging unites on.
func (a *Advisory) identifiers() []string {
	out := make([]string, 0, 2+len(a.Aliases))
	out = append(out, a.ID)
	out = append(out, a.Aliases...)
	if a.VulnerabilityID != a.ID {
		out = append(out, a.VulnerabilityID)
	}
	return out
}

// wire types: only what Lading uses; unknown fields are ignored.
type osvRecord struct {
	ID               string          `json:"id"`
	Modified         string          `json:"modified"`
	Published        string          `json:"published"`
	Withdrawn        string          `json:"withdrawn"`
	Aliases          []string        `json:"aliases"`
	Related          []string        `json:"related"`
	Upstream         []string        `json:"upstream"`
	Summary          string          `json:"summary"`
	Details          string          `json:"details"`
	Severity         []osvSeverity   `json:"severity"`
	Affected         []osvAffected   `json:"affected"`
	References       []Reference     `json:"references"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type osvSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type osvAffected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
		Purl      string `json:"purl"`
	} `json:"package"`
	Severity          []osvSeverity   `json:"severity"`
	Ranges            []osvRange      `json:"ranges"`
	Versions          []string        `json:"versions"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
	DatabaseSpecific  json.RawMessage `json:"database_specific"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Repo   string     `json:"repo"`
	Events []osvEvent `json:"events"`
}

type osvEvent struct {
	Introduced   string `json:"introduced"`
	Fixed        string `json:"fixed"`
	LastAffected string `json:"last_affected"`
	Limit        string `json:"limit"`
}

// Canonicalize compacts an OSV JSON record and returns it with its hash. Compaction makes
// re-exports that only differ in whitespace compare equal.
func Canonicalize(raw []byte) ([]byte, string, error) {
	if len(raw) > MaxRecordSize {
		return nil, "", fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrInvalidRecord, len(raw), MaxRecordSize)
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}

// Parse parses and checks one OSV JSON record. It needs an id and a modified time
// (RFC 3339); every other field is optional. Events with several kinds set are read as
// several events rather than rejected, since the meaning is unambiguous.
func Parse(raw []byte) (*Advisory, error) {
	compact, hash, err := Canonicalize(raw)
	if err != nil {
		return nil, err
	}
	return ParseCanonical(compact, hash)
}

// ParseCanonical parses a record already compacted by Canonicalize (as the store keeps
// records), with the hash Canonicalize returned for it.
func ParseCanonical(compact []byte, hash string) (*Advisory, error) {
	var r osvRecord
	var err error
	if !decodeRecord(compact, &r) {
		r = osvRecord{}
		if err := json.Unmarshal(compact, &r); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
		}
	}
	if err := CheckID(r.ID); err != nil {
		return nil, err
	}
	a := &Advisory{
		ID:               r.ID,
		Aliases:          cleanIDs(r.Aliases),
		Related:          cleanIDs(r.Related),
		Upstream:         cleanIDs(r.Upstream),
		Summary:          r.Summary,
		Details:          r.Details,
		DatabaseSpecific: nonNull(r.DatabaseSpecific),
		Hash:             hash,
	}
	if a.Modified, err = parseTime(r.ID, "modified", r.Modified, true); err != nil {
		return nil, err
	}
	if a.Published, err = parseTime(r.ID, "published", r.Published, false); err != nil {
		return nil, err
	}
	if a.Withdrawn, err = parseTime(r.ID, "withdrawn", r.Withdrawn, false); err != nil {
		return nil, err
	}
	for _, ref := range r.References {
		if ref.URL != "" {
			a.References = append(a.References, ref)
		}
	}
	a.Affected = make([]Affected, 0, len(r.Affected))
	for _, oa := range r.Affected {
		af := Affected{
			Ecosystem:         strings.TrimSpace(oa.Package.Ecosystem),
			Name:              strings.TrimSpace(oa.Package.Name),
			Purl:              oa.Package.Purl,
			Versions:          oa.Versions,
			EcosystemSpecific: nonNull(oa.EcosystemSpecific),
			DatabaseSpecific:  nonNull(oa.DatabaseSpecific),
		}
		for _, or := range oa.Ranges {
			rg := Range{Type: strings.ToUpper(or.Type), Repo: or.Repo}
			for _, ev := range or.Events {
				for _, e := range [...]Event{{Introduced, ev.Introduced}, {LastAffected, ev.LastAffected}, {Fixed, ev.Fixed}, {Limit, ev.Limit}} {
					if e.Version = strings.TrimSpace(e.Version); e.Version != "" {
						rg.Events = append(rg.Events, e)
					}
				}
			}
			af.Ranges = append(af.Ranges, rg)
		}
		if BaseEcosystem(af.Ecosystem) == "Go" {
			af.Imports = goImports(af.EcosystemSpecific)
		}
		af.CVSS = scoreVectors(oa.Severity)
		af.Severity = affectedSeverity(oa.Severity, af.CVSS, af.EcosystemSpecific, af.DatabaseSpecific)
		a.Affected = append(a.Affected, af)
	}
	a.CVSS = scoreVectors(r.Severity)
	a.Severity = recordSeverity(a, r.Severity)
	a.VulnerabilityID = vulnerabilityID(a)
	a.precompute()
	return a, nil
}

func (a *Advisory) precompute() {
	for _, id := range a.identifiers() {
		if id != a.VulnerabilityID && !slices.Contains(a.otherIDs, id) {
			a.otherIDs = append(a.otherIDs, id)
		}
	}
	slices.Sort(a.otherIDs)
	a.otherIDs = slices.Clip(a.otherIDs)
	if a.otherIDs == nil {
		a.otherIDs = []string{}
	}
	a.self, a.selfID = []*Advisory{a}, []string{a.ID}
	if a.Severity.HasScore {
		s := a.Severity.Score
		a.score = &s
	}
	if vs := fromVectors(a.CVSS); vs.HasScore {
		a.best = CVSS{Version: vs.Version, Vector: vs.Vector, BaseScore: vs.Score}
	}
}

// CheckID checks that id can be an OSV record id; ids also name files and URLs of a
// mirror, so one with a path separator, "." or ".." is refused.
func CheckID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: no id", ErrInvalidRecord)
	}
	if len(id) > 256 {
		return fmt.Errorf("%w: id longer than 256 bytes", ErrInvalidRecord)
	}
	for _, c := range id {
		if unicode.IsSpace(c) || unicode.IsControl(c) || c == '/' || c == '\\' {
			return fmt.Errorf("%w: id %q has a character ids may not have", ErrInvalidRecord, id)
		}
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: id %q", ErrInvalidRecord, id)
	}
	return nil
}

func parseTime(id, field, s string, required bool) (time.Time, error) {
	if s == "" {
		if required {
			return time.Time{}, fmt.Errorf("%w: %s: no %s time", ErrInvalidRecord, id, field)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// Some published records write year 1 as "1-01-01T…"; pad the year and try again.
		if y, rest, ok := strings.Cut(s, "-"); ok && len(y) < 4 && strings.Trim(y, "0123456789") == "" {
			t, err = time.Parse(time.RFC3339Nano, strings.Repeat("0", 4-len(y))+y+"-"+rest)
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: %s time %q is not RFC 3339", ErrInvalidRecord, id, field, s)
		}
	}
	return t.UTC(), nil
}

func cleanIDs(ids []string) []string {
	out := ids[:0:0]
	for _, s := range ids {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func nonNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return m
}

func isCVE(id string) bool { return strings.HasPrefix(id, "CVE-") }

func vulnerabilityID(a *Advisory) string {
	if isCVE(a.ID) {
		return a.ID
	}
	for _, s := range a.Aliases {
		if isCVE(s) {
			return s
		}
	}
	// A distribution record about exactly one upstream CVE (ALPINE-CVE-…, a DSA fixing one CVE)
	// is that CVE's finding; one covering several keeps its own id.
	var cve string
	for _, s := range a.Upstream {
		if isCVE(s) {
			if cve != "" && cve != s {
				return a.ID
			}
			cve = s
		}
	}
	if cve != "" {
		return cve
	}
	return a.ID
}
