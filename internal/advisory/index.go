package advisory

import (
	"errors"
	"fmt"
	"maps"
	bits64 "math/bits"
	"slices"
	"strings"
	"sync/atomic"
)

// Index is an immutable, in-memory snapshot of the advisory database at one version,
// keyed by (ecosystem, package). It is safe for concurrent use; a newer version is a new
// Index that shares the unchanged packages with the old one.
type Index struct {
	version int64
	pkgs    map[PackageKey]*pkgEntry
	advs    map[string]*Advisory
	stats   IndexStats
}

// IndexStats describes what an Index holds.
type IndexStats struct {
	Packages   int `json:"packages"`
	Advisories int `json:"advisories"`
	// UnorderableVersions counts range events and listed versions that the ecosystem's
	// version syntax rejects; such events are left out of range evaluation.
	UnorderableVersions int `json:"unorderableVersions"`
}

// EmptyIndex is an index of version 0 with nothing in it.
func EmptyIndex() *Index {
	return &Index{pkgs: map[PackageKey]*pkgEntry{}, advs: map[string]*Advisory{}}
}

// Version is the database version the index reflects.
func (ix *Index) Version() int64 { return ix.version }

// Stats describes the index.
func (ix *Index) Stats() IndexStats {
	s := ix.stats
	s.Packages, s.Advisories = len(ix.pkgs), len(ix.advs)
	return s
}

// Advisory returns a current, not withdrawn advisory by record id, or nil.
func (ix *Index) Advisory(id string) *Advisory { return ix.advs[id] }

// ByVulnerability returns the current advisories about a vulnerability: the record with that
// id, and the records naming it as their vulnerability or an alias, sorted by id. It walks
// every advisory (a few milliseconds for the whole OSV corpus): it serves lookups by people,
// not matching.
func (ix *Index) ByVulnerability(id string) []*Advisory {
	var out []*Advisory
	for _, a := range ix.advs {
		if a.ID == id || a.VulnerabilityID == id || slices.Contains(a.Aliases, id) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b *Advisory) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// HasPackage reports whether any advisory names the package (ecosystem exactly, name
// normalised). Scanners can use it to skip packages cheaply.
func (ix *Index) HasPackage(ecosystem, name string) bool {
	key := MakeKey(ecosystem, name)
	if _, ok := ix.pkgs[key]; ok {
		return true
	}
	bare, ok := key.Bare()
	if !ok {
		return false
	}
	_, ok = ix.pkgs[bare]
	return ok
}

// pkgEntry is everything known about one package key, compiled for matching.
type pkgEntry struct {
	key    PackageKey
	spaces [2]*versionSpace // [0] the ecosystem's order, [1] SemVer for SEMVER ranges when different
	advs   []*Advisory      // distinct advisories, by vulnerability id and id
	// disjoint: no two advisories share an identifier, so none merge.
	disjoint bool
	affs     []compiledAffected

	// Answers depend only on where a version falls among the boundaries, so when the entry
	// has one ordering an answer asked for twice is kept and shared (answers asked for once
	// are not, so a sweep over many versions does not fill memory).
	byRank []atomic.Pointer[[]*Vulnerability]
	asked  []atomic.Uint32

	advStart []int32 // affs[advStart[i]:advStart[i+1]] are advisory i's entries
	// Per advisory, over its entries for this package: the first entry's own severity,
	// their own vectors, and their fixed versions sorted by ordering and rank (all shared
	// with results: read-only).
	advSev   []*Severity
	advCVSS  [][]CVSS
	advFixed [][]fixedVersion
	// vulns[vulnStart[i]+j] is advisory i's Vulnerability when its fixed versions from the
	// j-th on lie above the queried version; built on first use. Bounded by the data, not
	// by the queries.
	vulns     []atomic.Pointer[Vulnerability]
	vulnStart []int32
	// verdicts holds, for each rank of the single ordering, a bitset of the advisories
	// affecting versions at that rank: range evaluation done once per rank, on the first
	// query placed there (a scan asks about one version of a package, not all of them).
	verdicts []atomic.Pointer[[]uint64]
	// unevaluated are the advisories with a range that could not be compiled, with why; nil
	// for almost every package, so answers pay nothing for it.
	unevaluated []Unevaluated
}

// markUnevaluated records that a range of advisory adv could not be compiled (the first
// reason per advisory is kept).
func (e *pkgEntry) markUnevaluated(adv int32, reason string) {
	id := e.advs[adv].ID
	for _, u := range e.unevaluated {
		if u.AdvisoryID == id {
			return
		}
	}
	e.unevaluated = append(e.unevaluated, Unevaluated{AdvisoryID: id, Reason: reason})
}

const (
	// maxVerdictWords bounds one package's verdict table (8 MiB); a package beyond it is
	// evaluated range by range at each query instead.
	maxVerdictWords = 1 << 20
	// maxSharedAdvisories bounds the packages whose answers are kept per rank: a package
	// with hundreds of advisories (a kernel) would keep hundreds of answers of hundreds of
	// vulnerabilities each, so its answers are built per query instead.
	maxSharedAdvisories = 32
)

// rankFor places a version in the entry's single ordering.
func (e *pkgEntry) rankFor(version string) (int32, error) {
	return e.spaces[0].place(version)
}

// atRank returns the (shared) answer for versions at rank r.
func (e *pkgEntry) atRank(r int32) []*Vulnerability {
	slot := &e.byRank[r]
	if p := slot.Load(); p != nil {
		return *p
	}
	vs := e.answer(e.collectRank(r))
	if e.asked[r].Add(1) >= 2 {
		slot.Store(&vs)
	}
	return vs
}

type compiledAffected struct {
	adv      int32 // index into pkgEntry.advs
	aff      *Affected
	versions []int32 // ranks of the explicit versions in spaces[0]; rankUnknown when unplaceable
	ranges   []compiledRange
	fixed    []fixedVersion
}

type compiledRange struct {
	space  uint8
	events []compiledEvent // sorted by rank, then kind
	limits []int32
	// zeroOnly: the range is "introduced 0" alone, so it holds every version, even one the
	// ecosystem cannot parse.
	zeroOnly bool
}

type compiledEvent struct {
	kind EventKind
	rank int32
}

type fixedVersion struct {
	space uint8
	rank  int32
	s     string
}

// builder compiles package entries; it remembers how each base ecosystem is ordered, and
// shares one versionSpace between packages with the same boundaries (the binary packages
// of one source package in RPM distributions, a module and its submodules, ...).
type builder struct {
	probes      map[string]spaceInfo
	spaces      map[string]*versionSpace
	unorderable int
}

func newBuilder() *builder {
	return &builder{probes: map[string]spaceInfo{}, spaces: map[string]*versionSpace{}}
}

func (b *builder) versionSpace(name string, strs map[string]struct{}) *versionSpace {
	sorted := slices.Sorted(maps.Keys(strs))
	sig := name + "\x00" + strings.Join(sorted, "\x00")
	if vs, ok := b.spaces[sig]; ok {
		return vs
	}
	vs, bad := newVersionSpace(name, strs)
	b.unorderable += bad
	b.spaces[sig] = vs
	return vs
}

func (b *builder) space(base string) spaceInfo {
	info, ok := b.probes[base]
	if !ok {
		info = probeSpace(base)
		b.probes[base] = info
	}
	return info
}

type affRef struct {
	adv *Advisory
	aff *Affected
}

// BuildIndex builds the index of a database version from its current advisories.
// Withdrawn advisories are left out.
func BuildIndex(version int64, advisories []*Advisory) *Index {
	b := newBuilder()
	ix := &Index{version: version, pkgs: map[PackageKey]*pkgEntry{}, advs: make(map[string]*Advisory, len(advisories))}
	refs := map[PackageKey][]affRef{}
	for _, a := range advisories {
		if a.IsWithdrawn() {
			continue
		}
		ix.advs[a.ID] = a
		for i := range a.Affected {
			af := &a.Affected[i]
			k := af.Key()
			if k.Ecosystem == "" || k.Name == "" {
				continue
			}
			refs[k] = append(refs[k], affRef{a, af})
		}
	}
	for k, rs := range refs {
		ix.pkgs[k] = b.compile(k, rs)
	}
	ix.stats.UnorderableVersions = b.unorderable
	return ix
}

// WithChanges returns a new index at version: the packages named by keys are rebuilt from
// advisories (every current advisory affecting any of them); all other packages are
// shared with ix, which is left as it was.
func (ix *Index) WithChanges(version int64, keys []PackageKey, advisories []*Advisory) *Index {
	b := newBuilder()
	nx := &Index{version: version, pkgs: maps.Clone(ix.pkgs), advs: maps.Clone(ix.advs)}
	changed := make(map[PackageKey]bool, len(keys))
	for _, k := range keys {
		changed[k] = true
		if old := nx.pkgs[k]; old != nil {
			for _, a := range old.advs {
				delete(nx.advs, a.ID)
			}
		}
		delete(nx.pkgs, k)
	}
	refs := map[PackageKey][]affRef{}
	for _, a := range advisories {
		if a.IsWithdrawn() {
			continue
		}
		nx.advs[a.ID] = a
		for i := range a.Affected {
			af := &a.Affected[i]
			if k := af.Key(); changed[k] {
				refs[k] = append(refs[k], affRef{a, af})
			}
		}
	}
	for k, rs := range refs {
		nx.pkgs[k] = b.compile(k, rs)
	}
	nx.stats.UnorderableVersions = ix.stats.UnorderableVersions + b.unorderable
	return nx
}

func (b *builder) compile(key PackageKey, refs []affRef) *pkgEntry {
	base := BaseEcosystem(key.Ecosystem)
	info := b.space(base)
	e := &pkgEntry{key: key}

	// Distinct advisories, by id.
	for _, r := range refs {
		if !slices.Contains(e.advs, r.adv) {
			e.advs = append(e.advs, r.adv)
		}
	}
	// In result order, so that answers need no sorting.
	slices.SortFunc(e.advs, func(x, y *Advisory) int {
		if c := strings.Compare(x.VulnerabilityID, y.VulnerabilityID); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	// Most packages have no two advisories that alias each other: their answers need no
	// merging either.
	owner := make(map[string]*Advisory, 2*len(e.advs))
	e.disjoint = true
	for _, a := range e.advs {
		for _, id := range append([]string{a.VulnerabilityID}, a.otherIDs...) {
			if o, ok := owner[id]; ok && o != a {
				e.disjoint = false
			}
			owner[id] = a
		}
	}

	// Which ordering each range uses: 0 = ecosystem, 1 = SemVer, -1 = none (GIT, or an
	// ECOSYSTEM range of an ecosystem Lading cannot order).
	spaceFor := func(rangeType string) int {
		switch rangeType {
		case "ECOSYSTEM":
			if info.supported {
				return 0
			}
		case "SEMVER":
			if info.semver {
				return 0
			}
			return 1
		}
		return -1
	}
	var strs [2]map[string]struct{}
	add := func(space int, s string) {
		if strs[space] == nil {
			strs[space] = map[string]struct{}{}
		}
		strs[space][s] = struct{}{}
	}
	for _, r := range refs {
		if info.supported {
			for _, v := range r.aff.Versions {
				add(0, v)
			}
		}
		for _, rg := range r.aff.Ranges {
			sp := spaceFor(rg.Type)
			if sp < 0 {
				continue
			}
			for _, ev := range rg.Events {
				if (ev.Kind == Introduced && ev.Version == "0") || (ev.Kind == Limit && ev.Version == "*") {
					continue
				}
				add(sp, ev.Version)
			}
		}
	}
	names := [2]string{base, semverSpace}
	for i := range strs {
		if strs[i] != nil {
			e.spaces[i] = b.versionSpace(names[i], strs[i])
		}
	}

	for _, r := range refs {
		ca := compiledAffected{adv: int32(slices.Index(e.advs, r.adv)), aff: r.aff}
		if len(r.aff.Versions) > 0 {
			ca.versions = make([]int32, len(r.aff.Versions))
			for i, v := range r.aff.Versions {
				ca.versions[i] = rankUnknown
				if e.spaces[0] != nil {
					if rk, ok := e.spaces[0].rank(v); ok {
						ca.versions[i] = rk
					}
				}
			}
		}
		for _, rg := range r.aff.Ranges {
			sp := spaceFor(rg.Type)
			if sp < 0 {
				// Unorderable: only "every version" can still be answered.
				switch {
				case rg.Type != "GIT" && zeroOnly(rg):
					ca.ranges = append(ca.ranges, compiledRange{zeroOnly: true})
				case rg.Type == "ECOSYSTEM":
					e.markUnevaluated(ca.adv, fmt.Sprintf("an ECOSYSTEM range of %s, whose versions Lading cannot order", key.Ecosystem))
				case rg.Type != "GIT":
					// GIT ranges name commits, which no installed package has: they are not
					// for version matching.
					e.markUnevaluated(ca.adv, fmt.Sprintf("a range of unknown type %q", rg.Type))
				}
				continue
			}
			cr := compiledRange{space: uint8(sp), zeroOnly: zeroOnly(rg)}
			var fixed []fixedVersion
			broken := ""
			for _, ev := range rg.Events {
				var rk int32
				switch {
				case ev.Kind == Introduced && ev.Version == "0":
					rk = rankZero
				case ev.Kind == Limit && ev.Version == "*":
					rk = rankInf
				default:
					var ok bool
					if rk, ok = e.spaces[sp].rank(ev.Version); !ok {
						// A range missing one of its events would answer wrongly either
						// way (a missing introduced hides versions, a missing fixed shows
						// fixed ones): the range is left out and the advisory reported as
						// not evaluated.
						broken = fmt.Sprintf("%s range event %s %q is not a valid %s version", rg.Type, ev.Kind, ev.Version, names[sp])
					}
				}
				if broken != "" {
					break
				}
				if ev.Kind == Limit {
					cr.limits = append(cr.limits, rk)
					continue
				}
				cr.events = append(cr.events, compiledEvent{ev.Kind, rk})
				if ev.Kind == Fixed {
					fixed = append(fixed, fixedVersion{uint8(sp), rk, ev.Version})
				}
			}
			if broken != "" {
				e.markUnevaluated(ca.adv, broken)
				continue
			}
			ca.fixed = append(ca.fixed, fixed...)
			slices.SortStableFunc(cr.events, func(x, y compiledEvent) int {
				if x.rank != y.rank {
					return int(x.rank - y.rank)
				}
				return int(x.kind) - int(y.kind)
			})
			ca.ranges = append(ca.ranges, cr)
		}
		e.affs = append(e.affs, ca)
	}
	slices.SortStableFunc(e.affs, func(x, y compiledAffected) int { return int(x.adv - y.adv) })
	e.advStart = make([]int32, len(e.advs)+1)
	for _, ca := range e.affs {
		e.advStart[ca.adv+1]++
	}
	for i := 1; i < len(e.advStart); i++ {
		e.advStart[i] += e.advStart[i-1]
	}
	e.advSev = make([]*Severity, len(e.advs))
	e.advCVSS = make([][]CVSS, len(e.advs))
	e.advFixed = make([][]fixedVersion, len(e.advs))
	for adv := range e.advs {
		var fixed []fixedVersion
		for i := e.advStart[adv]; i < e.advStart[adv+1]; i++ {
			ca := &e.affs[i]
			if e.advSev[adv] == nil {
				e.advSev[adv] = ca.aff.Severity
			}
			e.advCVSS[adv] = append(e.advCVSS[adv], ca.aff.CVSS...)
			fixed = append(fixed, ca.fixed...)
		}
		slices.SortFunc(fixed, func(x, y fixedVersion) int {
			if x.space != y.space {
				return int(x.space) - int(y.space)
			}
			return int(x.rank - y.rank)
		})
		e.advCVSS[adv] = slices.Clip(e.advCVSS[adv])
		e.advFixed[adv] = slices.Clip(fixed)
	}
	if e.spaces[1] == nil {
		e.vulnStart = make([]int32, len(e.advs)+1)
		for adv, f := range e.advFixed {
			e.vulnStart[adv+1] = e.vulnStart[adv] + int32(len(f)) + 1
		}
		e.vulns = make([]atomic.Pointer[Vulnerability], e.vulnStart[len(e.advs)])
	}
	if nranks := 2*len(e.spaces[0].boundsOrNil()) + 2; e.spaces[0] != nil && e.spaces[1] == nil && nranks*e.words() <= maxVerdictWords {
		e.verdicts = make([]atomic.Pointer[[]uint64], nranks)
		if len(e.advs) <= maxSharedAdvisories {
			e.byRank = make([]atomic.Pointer[[]*Vulnerability], nranks)
			e.asked = make([]atomic.Uint32, nranks)
		}
	}
	return e
}

func zeroOnly(rg Range) bool {
	if len(rg.Events) == 0 {
		return false
	}
	for _, ev := range rg.Events {
		if ev.Kind != Introduced || ev.Version != "0" {
			return false
		}
	}
	return true
}

// contains evaluates one range at the query's ranks (OSV's IncludedInRanges).
func (cr *compiledRange) contains(ranks *[2]int32) bool {
	if cr.zeroOnly {
		return true
	}
	v := ranks[cr.space]
	if v == rankUnknown {
		return false
	}
	if len(cr.limits) > 0 {
		below := false
		for _, l := range cr.limits {
			if v < l {
				below = true
				break
			}
		}
		if !below {
			return false
		}
	}
	vulnerable := false
	for _, ev := range cr.events {
		switch ev.kind {
		case Introduced:
			if v >= ev.rank {
				vulnerable = true
			}
		case Fixed:
			if v >= ev.rank {
				vulnerable = false
			}
		case LastAffected:
			if v > ev.rank {
				vulnerable = false
			}
		}
	}
	return vulnerable
}

// hit is one advisory found affecting the queried version.
type hit struct {
	adv   *Advisory
	sev   *Severity // an affected entry's own severity, if any
	cvss  []CVSS    // affected entries' own vectors
	fixed []fixedVersion
	// cache, when not nil, keeps the Vulnerability this hit makes on its own: it depends
	// only on the advisory and on which of its fixed versions lie above the queried one.
	cache *atomic.Pointer[Vulnerability]
}

// evaluate appends the advisories of the entry that affect version. err is non-nil
// (ErrInvalidVersion) when the version could not be placed in the ecosystem's order; the
// hits are then only those that need no ordering.
func (e *pkgEntry) evaluate(version string, hits []hit) ([]hit, error) {
	var ranks [2]int32
	var verr error
	for i, sp := range e.spaces {
		ranks[i] = rankUnknown
		if sp == nil {
			continue
		}
		v, err := parseIn(sp.name, version)
		if err != nil {
			verr = err
			continue
		}
		if ranks[i] = sp.rankOf(v); ranks[i] == rankUnknown {
			verr = fmt.Errorf("%w: %q cannot be compared with the advisories' versions in %s", ErrInvalidVersion, version, sp.name)
		}
	}
	return e.collect(&ranks, version, hits), verr
}

// collect appends the advisories affecting a version placed at ranks; version is its
// spelling, compared with listed versions that have no place in the order ("" when the
// version has a place, which settles listed versions by rank).
func (e *pkgEntry) collect(ranks *[2]int32, version string, hits []hit) []hit {
	// e.affs is grouped by advisory (compile sorts it), so one pass finds each advisory's
	// verdict and, for those affected, the fixed versions above the queried one.
	for adv := range e.advs {
		group := e.affs[e.advStart[adv]:e.advStart[adv+1]]
		for i := range group {
			if group[i].affects(version, ranks) {
				h := e.hit(adv, ranks)
				h.cache = nil // this path may answer for another key (a bare ecosystem)
				hits = append(hits, h)
				break
			}
		}
	}
	return hits
}

// collectRank is collect for a version placed at rank r of the single ordering, read from
// the verdicts.
func (e *pkgEntry) collectRank(r int32) []hit {
	ranks := [2]int32{r, rankUnknown}
	row := e.verdictRow(r)
	n := 0
	for _, bits := range row {
		n += bits64.OnesCount64(bits)
	}
	if n == 0 {
		return nil
	}
	hits := make([]hit, 0, n)
	for w, bits := range row {
		for bits != 0 {
			adv := w*64 + bits64.TrailingZeros64(bits)
			bits &= bits - 1
			hits = append(hits, e.hit(adv, &ranks))
		}
	}
	return hits
}

// verdictRow is the bitset of the advisories affecting versions at rank r, evaluated on its
// first use. Queries at the same rank at once may both evaluate it: the rows are equal.
func (e *pkgEntry) verdictRow(r int32) []uint64 {
	if p := e.verdicts[r].Load(); p != nil {
		return *p
	}
	row := make([]uint64, e.words())
	ranks := [2]int32{r, rankUnknown}
	for i := range e.affs {
		if adv := e.affs[i].adv; row[int(adv)/64]&(1<<(adv%64)) == 0 && e.affs[i].affects("", &ranks) {
			row[int(adv)/64] |= 1 << (adv % 64)
		}
	}
	e.verdicts[r].Store(&row)
	return row
}

// hit gathers what a match of advisory adv reports: its entries' own severity and vectors,
// and every fixed version above the queried one (an upgrade that leaves the advisory).
// With one ordering those are a suffix of the advisory's sorted fixed versions, so nothing
// is allocated.
func (e *pkgEntry) hit(adv int, ranks *[2]int32) hit {
	h := hit{adv: e.advs[adv], sev: e.advSev[adv], cvss: e.advCVSS[adv]}
	fixed := e.advFixed[adv]
	if e.spaces[1] == nil {
		i := 0
		if r := ranks[0]; r != rankUnknown {
			i, _ = slices.BinarySearchFunc(fixed, r+1, func(f fixedVersion, t int32) int { return int(f.rank - t) })
		}
		h.fixed = fixed[i:]
		h.cache = &e.vulns[e.vulnStart[adv]+int32(i)]
		return h
	}
	for _, f := range fixed {
		if r := ranks[f.space]; r == rankUnknown || f.rank > r {
			h.fixed = append(h.fixed, f)
		}
	}
	return h
}

func (e *pkgEntry) words() int { return (len(e.advs) + 63) / 64 }

func (ca *compiledAffected) affects(version string, ranks *[2]int32) bool {
	for i, rk := range ca.versions {
		if (version != "" && ca.aff.Versions[i] == version) || (rk != rankUnknown && rk == ranks[0]) {
			return true
		}
	}
	for i := range ca.ranges {
		if ca.ranges[i].contains(ranks) {
			return true
		}
	}
	return false
}

// Affecting returns the vulnerabilities affecting one version of a package, with records
// that alias each other merged into one vulnerability, sorted by vulnerability id.
// ecosystem is OSV's ecosystem string ("Debian:12", "Alpine:v3.20", "npm", "Go", ...) and
// name the package as OSV names it (the source package for distributions); names are
// normalised where the ecosystem is case- or punctuation-insensitive.
//
// When the version is not valid in the ecosystem the error wraps ErrInvalidVersion and the
// result holds only what needs no ordering (listed versions, ranges open from "0").
// A package no advisory names costs one map lookup and no allocation.
func (ix *Index) Affecting(ecosystem, name, version string) ([]*Vulnerability, error) {
	key := MakeKey(ecosystem, name)
	if key.Ecosystem == "Go" && len(version) > 2 && strings.HasPrefix(version, "go") && version[2] >= '0' && version[2] <= '9' {
		version = version[2:] // Go toolchain versions ("go1.21.3") are stdlib versions
	}
	e := ix.pkgs[key]
	var bare *pkgEntry
	if bk, ok := key.Bare(); ok {
		bare = ix.pkgs[bk]
	}
	if e == nil && bare == nil {
		return nil, nil
	}
	vs, err := ix.affecting(key, e, bare, version)
	if (e == nil || e.unevaluated == nil) && (bare == nil || bare.unevaluated == nil) {
		return vs, err
	}
	if ue := unevaluatedOf(vs, e, bare); ue != nil {
		if err == nil {
			return vs, ue
		}
		return vs, errors.Join(err, ue)
	}
	return vs, err
}

func (ix *Index) affecting(key PackageKey, e, bare *pkgEntry, version string) ([]*Vulnerability, error) {
	if bare == nil && e.verdicts != nil {
		r, err := e.rankFor(version)
		switch {
		case r != rankUnknown && e.byRank != nil:
			return e.atRank(r), nil
		case r != rankUnknown:
			return e.answer(e.collectRank(r)), nil
		case version == "":
			return nil, err
		}
		// Unplaceable: fall through to match listed versions by spelling.
	}
	var hits []hit
	var err error
	if e != nil {
		hits, err = e.evaluate(version, hits)
	}
	if bare != nil {
		var err2 error
		hits, err2 = bare.evaluate(version, hits)
		if err == nil {
			err = err2
		}
	}
	return buildResult(key, hits), err
}

// unevaluatedOf lists the advisories of the entries with a range that could not be compiled
// and that did not match otherwise (through another range or a listed version); nil when
// there are none.
func unevaluatedOf(vs []*Vulnerability, entries ...*pkgEntry) *UnevaluatedError {
	var out []Unevaluated
	for _, e := range entries {
		if e == nil {
			continue
		}
		for _, u := range e.unevaluated {
			hit := slices.ContainsFunc(vs, func(v *Vulnerability) bool { return slices.Contains(v.AdvisoryIDs, u.AdvisoryID) })
			if !hit && !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	if out == nil {
		return nil
	}
	return &UnevaluatedError{Advisories: out}
}

func buildResult(key PackageKey, hits []hit) []*Vulnerability {
	switch len(hits) {
	case 0:
		return nil
	case 1:
		return []*Vulnerability{single(key, hits[0])}
	}
	return mergeHits(key, hits)
}

// answer builds the result of hits from collectRank: already in order, and when no two
// advisories of the package alias each other, made of shared per-advisory results.
func (e *pkgEntry) answer(hits []hit) []*Vulnerability {
	if !e.disjoint || len(hits) == 0 {
		return buildResult(e.key, hits)
	}
	out := make([]*Vulnerability, len(hits))
	for i, h := range hits {
		out[i] = single(e.key, h)
	}
	return out
}

// single is the Vulnerability of a hit that merges with no other, shared when cached.
func single(key PackageKey, h hit) *Vulnerability {
	if h.cache == nil {
		return singleVulnerability(key, h)
	}
	if v := h.cache.Load(); v != nil {
		return v
	}
	v := singleVulnerability(key, h)
	h.cache.Store(v)
	return v
}

// BoundaryVersions returns the versions named in the ranges and version lists of a
// package's advisories (as written), for tests and benchmarks that need realistic versions.
func (ix *Index) BoundaryVersions(k PackageKey) []string {
	e := ix.pkgs[k]
	if e == nil {
		return nil
	}
	var out []string
	for _, ca := range e.affs {
		out = append(out, ca.aff.Versions...)
		for _, rg := range ca.aff.Ranges {
			for _, ev := range rg.Events {
				if rg.Type != "GIT" && ev.Version != "0" && ev.Version != "*" {
					out = append(out, ev.Version)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
