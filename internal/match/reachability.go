package match

import (
	"slices"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory/installed"
)

// Reachability of a vulnerable Go package: whether the symbols the advisory names vulnerable
// are in the binary the package was found in.
const (
	// ReachPresent: a vulnerable symbol (or, for an advisory naming a whole package, some
	// function of the package) is in the binary.
	ReachPresent = "PRESENT"
	// ReachAbsent: none of the vulnerable symbols is in the binary's function table, which
	// names inlined functions too.
	ReachAbsent = "ABSENT"
	// ReachUnknown: the binary's symbols could not be read, or the advisory names no
	// vulnerable package of the module. Never read as unreachable.
	ReachUnknown = "UNKNOWN"
)

// reachability decides a Go package's reachability for a vulnerability from the imports
// (package paths and symbols) its advisories list for the package's module; "" for packages
// of other ecosystems.
//
// An advisory that lists no imports for the module gives UNKNOWN: it does not say which
// code is vulnerable, and a module being linked is no evidence that its vulnerable part is.
// Records merged into one vulnerability are read together: a GHSA record of a Go module,
// which never lists symbols, defers to the Go vulnerability database's record it aliases.
// An import that lists no symbols means its whole package is vulnerable: PRESENT when the
// binary holds any function of the package. An import limited to other platforms (goos,
// goarch) than the binary's does not apply.
func reachability(p installed.Package, v *advisory.Vulnerability) string {
	if p.Ecosystem != "Go" {
		return ""
	}
	if p.Symbols == nil {
		return ReachUnknown
	}
	key := Key(p)
	listed := false
	for _, a := range v.Advisories {
		for i := range a.Affected {
			af := &a.Affected[i]
			if af.Key() != key {
				continue
			}
			if len(af.Imports) == 0 {
				continue
			}
			listed = true
			for _, im := range af.Imports {
				if applies(im, p.Symbols) && holds(p.Symbols.Packages[im.Path], im.Symbols) {
					return ReachPresent
				}
			}
		}
	}
	if !listed {
		return ReachUnknown
	}
	return ReachAbsent
}

// applies reports whether an import's platforms include the binary's (an unknown platform
// is included).
func applies(im advisory.GoImport, s *installed.Symbols) bool {
	return (len(im.GOOS) == 0 || s.GOOS == "" || slices.Contains(im.GOOS, s.GOOS)) &&
		(len(im.GOARCH) == 0 || s.GOARCH == "" || slices.Contains(im.GOARCH, s.GOARCH))
}

// holds reports whether a package's functions in the binary (sorted) include one of the
// vulnerable symbols, or any function when the whole package is vulnerable.
func holds(have, vulnerable []string) bool {
	if len(vulnerable) == 0 {
		return len(have) > 0
	}
	for _, s := range vulnerable {
		if _, ok := slices.BinarySearch(have, s); ok {
			return true
		}
	}
	return false
}

// Reachability is the finding's reachability as a whole: PRESENT when some package's is,
// ABSENT when every package's is ABSENT (all of them Go packages whose vulnerable symbols are
// not in their binaries), UNKNOWN otherwise, and "" for a finding without Go packages. It is
// what filters on reachability use (`lading scan --reachable-only`, and the Inspector face's
// filters, on stored finding details).
func (f Finding) Reachability() string {
	goPackages, allAbsent := false, true
	for _, p := range f.Packages {
		switch p.Reachability {
		case ReachPresent:
			return ReachPresent
		case ReachAbsent:
			goPackages = true
		case "":
			allAbsent = false
		default:
			goPackages, allAbsent = true, false
		}
	}
	switch {
	case !goPackages:
		return ""
	case allAbsent:
		return ReachAbsent
	}
	return ReachUnknown
}

// Unreachable reports whether every package of the finding is ABSENT: the findings
// `lading scan --reachable-only` hides.
func (f Finding) Unreachable() bool { return f.Reachability() == ReachAbsent }
