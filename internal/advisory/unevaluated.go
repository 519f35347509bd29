package advisory

import "strings"

// Unevaluated is an advisory that could not be evaluated for a package: a range of it that
// Lading cannot compile (a boundary that is not a version of the ecosystem, an ecosystem whose
// versions it cannot order).
type Unevaluated struct {
	AdvisoryID string
	Reason     string
}

// UnevaluatedError is what Affecting returns beside its result when some advisories of the
// package could not be evaluated and did not match otherwise: the result cannot say the
// version is unaffected by them.
type UnevaluatedError struct {
	Advisories []Unevaluated
}

func (e *UnevaluatedError) Error() string {
	parts := make([]string, len(e.Advisories))
	for i, u := range e.Advisories {
		parts[i] = u.AdvisoryID + ": " + u.Reason
	}
	return "advisories not evaluated: " + strings.Join(parts, "; ")
}
