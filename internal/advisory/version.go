package advisory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/osv-scalibr/semantic"
)

// semverSpace names the ordering of SEMVER ranges, which is SemVer 2.0 whatever the ecosystem.
const semverSpace = "SemVer"

// ErrUnsupportedEcosystem means Lading cannot order versions of the ecosystem; its records
// still match through explicit versions lists.
var ErrUnsupportedEcosystem = semantic.ErrUnsupportedEcosystem

// ErrInvalidVersion means a version string is not valid in its ecosystem.
var ErrInvalidVersion = errors.New("invalid version")

func parseIn(space, s string) (semantic.Version, error) {
	if space == semverSpace {
		return semantic.ParseSemverVersion(s), nil
	}
	v, err := semantic.Parse(s, space)
	if err != nil {
		if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q in %s: %w", ErrInvalidVersion, s, space, err)
	}
	return v, nil
}

// CompareVersions orders two versions the way the ecosystem does (osv-scalibr's semantic
// package): negative when a < b, zero when equal, positive when a > b.
func CompareVersions(ecosystem, a, b string) (int, error) {
	base := BaseEcosystem(ecosystem)
	va, err := parseIn(base, a)
	if err != nil {
		return 0, err
	}
	vb, err := parseIn(base, b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb)
}

// spaceInfo says how versions of an ecosystem are ordered.
type spaceInfo struct {
	supported bool // semantic can order the ecosystem
	semver    bool // its order is SemVer, so SEMVER ranges share it
}

func probeSpace(base string) spaceInfo {
	v, err := semantic.Parse("0", base)
	if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
		return spaceInfo{}
	}
	_, isSemver := v.(semantic.SemverVersion)
	return spaceInfo{supported: true, semver: isSemver}
}

// Ranks place versions on a line: rank 0 is the special introduced "0" (below everything),
// boundary i has rank 2i+2, odd ranks fall between boundaries, rankInf is limit "*".
const (
	rankZero    int32 = 0
	rankInf     int32 = 1<<31 - 1
	rankUnknown int32 = -1
)

// versionSpace holds the distinct boundary versions of one package in one ordering, sorted,
// so a queried version is parsed once and placed by binary search; range evaluation is
// then integer comparisons.
type versionSpace struct {
	name   string // base ecosystem or semverSpace
	bounds []semantic.Version
	ranks  map[string]int32 // boundary string -> rank

	// The rank of each version string queried is remembered (up to memoLimit): scans of
	// images built on the same bases ask about the same versions over and over.
	memoMu sync.RWMutex
	memo   map[string]int32
}

// memoLimit bounds the remembered versions of one space.
const memoLimit = 1024

// place returns the rank of a version string.
func (vs *versionSpace) place(version string) (int32, error) {
	vs.memoMu.RLock()
	r, ok := vs.memo[version]
	vs.memoMu.RUnlock()
	if ok {
		return r, nil
	}
	// A version spelled as one of the boundaries (an installed version that is a fixed
	// version, say) has that boundary's rank: no parse, no comparison.
	if r, ok := vs.ranks[version]; ok {
		return r, nil
	}
	v, err := parseIn(vs.name, version)
	if err != nil {
		return rankUnknown, err
	}
	r = vs.rankOf(v)
	if r != rankUnknown {
		vs.memoMu.Lock()
		if vs.memo == nil {
			vs.memo = make(map[string]int32, 4)
		}
		if len(vs.memo) < memoLimit {
			vs.memo[strings.Clone(version)] = r // not the caller's buffer
		}
		vs.memoMu.Unlock()
	}
	return r, nil
}

func newVersionSpace(name string, strs map[string]struct{}) (*versionSpace, int) {
	type parsed struct {
		s string
		v semantic.Version
	}
	ps := make([]parsed, 0, len(strs))
	bad := 0
	for s := range strs {
		v, err := parseIn(name, s)
		if err != nil {
			bad++
			continue
		}
		ps = append(ps, parsed{s, v})
	}
	slices.SortFunc(ps, func(a, b parsed) int {
		c, err := a.v.Compare(b.v)
		if err != nil || c == 0 {
			if a.s < b.s {
				return -1
			} else if a.s > b.s {
				return 1
			}
			return 0
		}
		return c
	})
	vs := &versionSpace{name: name, ranks: make(map[string]int32, len(ps))}
	for i, p := range ps {
		if i > 0 {
			if c, err := vs.bounds[len(vs.bounds)-1].Compare(p.v); err == nil && c == 0 {
				vs.ranks[p.s] = int32(2 * len(vs.bounds)) // equal to the previous boundary
				continue
			}
		}
		vs.bounds = append(vs.bounds, p.v)
		vs.ranks[p.s] = int32(2 * len(vs.bounds))
	}
	return vs, bad
}

// rankOf places v among the boundaries.
func (vs *versionSpace) rankOf(v semantic.Version) int32 {
	lo, hi := 0, len(vs.bounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c, err := vs.bounds[mid].Compare(v)
		if err != nil {
			return rankUnknown
		}
		switch {
		case c < 0:
			lo = mid + 1
		case c > 0:
			hi = mid
		default:
			return int32(2*mid + 2)
		}
	}
	return int32(2*lo + 1)
}

func (vs *versionSpace) boundsOrNil() []semantic.Version {
	if vs == nil {
		return nil
	}
	return vs.bounds
}

// rank returns the rank of a boundary string.
func (vs *versionSpace) rank(s string) (int32, bool) {
	r, ok := vs.ranks[s]
	return r, ok
}
