package advisory

import "slices"

// Lookup is one question a scan asks an index: which advisories affect this version of this
// package (Index.Affecting's arguments).
type Lookup struct {
	Ecosystem, Name, Version string
}

// Key is the package the lookup asks about.
func (l Lookup) Key() PackageKey { return MakeKey(l.Ecosystem, l.Name) }

// Relevant returns the advisories of advs that can take part in an index's answer to one of
// lookups: those an answer names, and every advisory of a package whose answer came with an
// error (a version that cannot be ordered, a range that cannot be evaluated), whose verdict
// is left to the index they end in. Whether an advisory affects a version depends on that
// advisory alone, so an index of the advisories returned answers every lookup as an index of
// advs does (TestRelevantAnswersAsAll). A one-off scan keeps only these, not every advisory
// of its packages, most of which name other versions.
func Relevant(advs []*Advisory, lookups []Lookup) []*Advisory {
	if len(advs) == 0 {
		return nil
	}
	ix := BuildIndex(0, advs)
	named := map[string]bool{}
	unsure := map[PackageKey]bool{}
	for _, l := range lookups {
		vs, err := ix.Affecting(l.Ecosystem, l.Name, l.Version)
		for _, v := range vs {
			for _, id := range v.AdvisoryIDs {
				named[id] = true
			}
		}
		if err != nil {
			k := l.Key()
			unsure[k] = true
			if bare, ok := k.Bare(); ok {
				unsure[bare] = true
			}
		}
	}
	var out []*Advisory
	for _, a := range advs {
		if named[a.ID] || slices.ContainsFunc(a.Keys(), func(k PackageKey) bool { return unsure[k] }) {
			out = append(out, a)
		}
	}
	return out
}
