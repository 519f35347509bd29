package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ChangeKind says what happened to a manifest.
type ChangeKind string

// Change kinds.
const (
	ChangePush   ChangeKind = "PUSH"
	ChangeDelete ChangeKind = "DELETE"
)

// Change describes a manifest push or delete, inside the transaction that makes it, so that
// the events it causes and the scans it starts are written atomically with it.
type Change struct {
	Kind       ChangeKind
	Repository string
	// RepositoryScanOnPush is the repository's own (deprecated) scanOnPush flag.
	RepositoryScanOnPush bool
	Manifest             Manifest
	// Tags are the tags the push set, or the tags the delete removed.
	Tags []string
	// Created is set when a push stored a manifest the repository did not hold.
	Created bool
	// ManifestDeleted is set when a delete removed the manifest (not only a tag).
	ManifestDeleted bool
	// Generated is set for a manifest Lading pushed or deletes itself (PutOptions.Generated,
	// or a delete of a manifest marked AnnotationGeneratedSBOM).
	Generated bool
}

// Effects are written in the same transaction as the change that causes them.
type Effects struct {
	Events []OutboxEvent
	Scans  []ScanJob
}

// EffectsFunc computes the effects of a change. It runs inside the write transaction, so it
// must not write to the store; it may read through the store's read connections.
type EffectsFunc func(ctx context.Context, c Change) (Effects, error)

// Scan job triggers.
const (
	TriggerPush     = "PUSH"
	TriggerManual   = "MANUAL"
	TriggerCoverage = "COVERAGE" // an existing image brought into continuous coverage
)

// ScanJob asks for one repository image to be scanned.
type ScanJob struct {
	ID         int64
	Repository string
	Digest     string
	ScanType   string
	Trigger    string
	Attempts   int
	CreatedAt  time.Time
	// LeaseOwner is the worker holding a running job ("host/pid").
	LeaseOwner string
	// Pending, when set, is the scan state recorded with the job if the image has none yet,
	// so that the scan shows as in progress from the moment it is queued.
	Pending *ImageScan
}

// ImageScan is the scan state of one repository image for one scan type.
type ImageScan struct {
	Repository        string
	Digest            string
	ScanType          string
	Status            string
	Description       string
	Frequency         string
	InventoryID       int64
	LastScanStartedAt time.Time
	CompletedAt       time.Time
	SourceUpdatedAt   time.Time
	UpdatedAt         time.Time
	// ImageFacts is what the scanner recorded of the image with its findings (JSON it owns);
	// empty when not known. Written empty, the stored facts are kept.
	ImageFacts []byte
	// NotEvaluated is what the scan could not evaluate (JSON the scanner owns), empty when
	// nothing; NotEvaluatedPackages counts its packages. Unlike ImageFacts, each write
	// replaces them.
	NotEvaluated         []byte
	NotEvaluatedPackages int
}

// Finding is a stored finding: the indexed fields, and the rest as JSON owned by the scanner.
type Finding struct {
	Repository      string
	Digest          string
	ScanType        string
	VulnerabilityID string
	ARN             string
	Status          string
	Severity        string
	Score           float64
	Fingerprint     string
	// PackageKeys are the advisory keys of the finding's packages, sorted; nil when the store
	// does not know them (findings written before it recorded them): Detail then decides.
	PackageKeys []PackageKey
	// Detail is nil in a ScanState until loaded with its Details; written nil, it keeps the
	// stored detail (a finding written for the first time needs one).
	Detail          []byte
	FirstObservedAt time.Time
	LastObservedAt  time.Time
	UpdatedAt       time.Time
	// Suppressed is set when a SUPPRESS rule (internal/suppression) matches the finding, which
	// an ACTIVE finding then shows as SUPPRESSED. The store keeps it: writers never set it; it is
	// read with details (Findings, the finding queries), not in a ScanState.
	Suppressed bool
}

// Usage kinds, for `lading admin usage`.
const (
	UsageInitial = "INITIAL"
	UsageRescan  = "RESCAN"
)

// Usage records one scan performed.
type Usage struct {
	Repository string
	Digest     string
	ScanType   string
	Kind       string
	At         time.Time
}

// ScanTarget names a repository image whose scan state is read and rewritten in one go.
type ScanTarget struct {
	Repository string
	Digest     string
	ScanType   string
	// JobID, when set, is the job being completed: if it is gone (the image was deleted
	// mid-scan), nothing is written for this target.
	JobID int64
}

// ScanState is what the store holds for a target when its update is computed.
type ScanState struct {
	Target ScanTarget
	Scan   *ImageScan // nil when the image was never scanned with this scan type
	// Findings are read without their Detail, which is large and which an update needs only
	// for the findings it rebuilds or closes: Details reads it for those.
	Findings []Finding
	Manifest Manifest
	// Details returns the stored detail of the target's findings with these vulnerability ids,
	// as the update's transaction reads them.
	Details func(ctx context.Context, vulnIDs []string) (map[string][]byte, error)
	// Partial reports that Findings holds only the findings a FindingSelection chose (the store
	// then sets More and All, which read the others as the update's transaction does). An update of
	// a partial state sets ScanUpdate.Observed for the findings it did not see.
	Partial bool
	// More returns the target's findings of these vulnerability ids that Findings does not hold,
	// and adds them to what the store compares the update with.
	More func(ctx context.Context, vulnIDs []string) ([]Finding, error)
	// All returns every finding of the target, which the update is then compared with as with a
	// whole state.
	All func(ctx context.Context) ([]Finding, error)
}

// DistinctTargets reports whether no target of an ApplyScans call has its rows written before it
// is read: the targets are distinct and none completes a job (whose row the call deletes). A
// store can then read their states ahead of its writes, hand partial states, and call their
// updates concurrently, each before the target's writes.
func DistinctTargets(targets []ScanTarget) bool {
	seen := make(map[ScanTarget]bool, len(targets))
	for _, t := range targets {
		if t.JobID != 0 || seen[t] {
			return false
		}
		seen[t] = true
	}
	return true
}

// FindingSelection chooses the findings a partial scan state holds: those whose package keys
// include a key Keys accepts, and those whose package keys are not known. A re-evaluation of
// changed advisories needs no others (it observes them again, unchanged).
type FindingSelection struct {
	Keys func(PackageKey) bool
	// Memo, when set, carries what a store worked out of the selection from one call to the
	// next with the same selection (a re-evaluation's batches), for it to reuse while the store
	// has not changed otherwise. Owned by the store; a new selection takes a new one.
	Memo *SelectionMemo
}

// SelectionMemo is a store's memo of a FindingSelection (see FindingSelection.Memo).
type SelectionMemo struct {
	mu sync.Mutex
	v  any
}

// Load returns what the store kept, nil for nothing.
func (m *SelectionMemo) Load() any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.v
}

// Store keeps v (nil forgets).
func (m *SelectionMemo) Store(v any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.v = v
}

// Holds reports whether a partial state holds the findings of a package key list: one of its
// keys is accepted, or the list is empty (the keys are not known).
func (sel FindingSelection) Holds(keys []PackageKey) bool {
	return len(keys) == 0 || slices.ContainsFunc(keys, sel.Keys)
}

// VulnerabilityIDs returns the vulnerability ids of the findings of each list, in order.
func VulnerabilityIDs(lists ...[]Finding) []string {
	n := 0
	for _, fs := range lists {
		n += len(fs)
	}
	out := make([]string, 0, n)
	for _, fs := range lists {
		for _, f := range fs {
			out = append(out, f.VulnerabilityID)
		}
	}
	return out
}

// WithFindings returns fs and more as one new slice in vulnerability id order, the order of a
// scan state's findings: fs itself, which an update may hold, is left as it is.
func WithFindings(fs, more []Finding) []Finding {
	out := slices.Concat(fs, more)
	slices.SortFunc(out, func(a, b Finding) int { return strings.Compare(a.VulnerabilityID, b.VulnerabilityID) })
	return out
}

// ScanUpdate is what to write for a target. Findings are upserts by vulnerability id.
type ScanUpdate struct {
	Scan     *ImageScan
	Findings []Finding
	Usage    []Usage
	Events   []OutboxEvent
	// Announce, when set, is called once Findings are written and the suppression rules applied
	// to them, with Findings as written (Suppressed set for those written with their detail,
	// whose rules were evaluated): the events it returns, written after Events, can say whether
	// a finding is SUPPRESSED.
	Announce func(written []Finding) ([]OutboxEvent, error)
	// Observed, for a partial state, is when the target's findings the state did not hold were
	// observed: an ACTIVE one's lastObservedAt moves to it, as if written unchanged with it.
	// Zero observes none of them.
	Observed time.Time
}

// InventoryPart is one content-addressed part of a stored image inventory: the packages one
// layer added (internal/scanning/storedinventory.go). Images sharing a layer share its part.
type InventoryPart struct {
	Hash []byte // SHA-256 of Data
	Data []byte
	// Keys are the advisory keys of the part's packages: the store indexes them once per part
	// (SQLite 0051, PostgreSQL 0046), so a key shared by many images' base is indexed once.
	Keys []PackageKey
}

// EncodeKeyIDs encodes sorted, distinct package key ids as SQLite's inventory_parts.key_ids
// keeps them: uvarint deltas, about one byte an id for a part's neighbouring keys.
func EncodeKeyIDs(ids []int64) []byte {
	out := make([]byte, 0, len(ids)*2)
	prev := int64(0)
	for _, id := range ids {
		out = binary.AppendUvarint(out, uint64(id-prev))
		prev = id
	}
	return out
}

// DecodeKeyIDs decodes what EncodeKeyIDs encoded.
func DecodeKeyIDs(b []byte) ([]int64, error) {
	var out []int64
	prev := int64(0)
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("inventory part key ids: bad varint")
		}
		prev += int64(d)
		out = append(out, prev)
		b = b[n:]
	}
	return out, nil
}

// InventoryRef is a repository image whose scan used an inventory, for continuous scanning.
type InventoryRef struct {
	Repository   string
	Digest       string
	InventoryID  int64
	PushedAt     time.Time
	LastPulledAt time.Time
	ScanOnPush   bool
}

// PackageKey is an (ecosystem, name) pair of the inverted index from packages to images.
type PackageKey struct{ Ecosystem, Name string }

// FindingContext is what findings criteria (suppression rules) compare with beyond a
// finding's own columns: the registry's account and region (ARNs, resource ids) and the
// vulnerabilities known to be exploited. Each engine's SetFindingContext takes it.
type FindingContext struct {
	Account, Region string
	Exploited       []string
}

// ErrNoDetail refuses a new finding written (ApplyScans) without its detail.
var ErrNoDetail = errors.New("a new finding needs its detail")

// CountsBySeverity names counts of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL and UNDEFINED
// findings, in that order (the columns of image_finding_counts), leaving out those with none.
func CountsBySeverity(n [6]int) map[string]int {
	counts := map[string]int{}
	for i, sev := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"} {
		if n[i] > 0 {
			counts[sev] = n[i]
		}
	}
	return counts
}

// PartsInOrder returns the data byHash holds (keyed by string(hash)) for each of hashes, in
// their order: what the engines' InventoryParts answer; a hash not held is ErrNotFound.
func PartsInOrder(hashes [][]byte, byHash map[string][]byte) ([][]byte, error) {
	out := make([][]byte, len(hashes))
	for i, h := range hashes {
		d, ok := byHash[string(h)]
		if !ok {
			return nil, fmt.Errorf("inventory part %x: %w", h, ErrNotFound)
		}
		out[i] = d
	}
	return out, nil
}

// KeysOutsideParts are those of keys no part's Keys hold: what an inventory stored in parts
// still indexes on its own (none, when its parts' keys are its keys).
func KeysOutsideParts(keys []PackageKey, parts []InventoryPart) []PackageKey {
	if len(parts) == 0 {
		return keys
	}
	held := map[PackageKey]bool{}
	for _, p := range parts {
		for _, k := range p.Keys {
			held[k] = true
		}
	}
	var out []PackageKey
	for _, k := range keys {
		if !held[k] {
			out = append(out, k)
		}
	}
	return out
}
