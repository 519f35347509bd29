package inspector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/findings"
)

// decode reads a request body. Malformed JSON and members of the wrong type are
// ValidationException with reason CANNOT_PARSE; unknown top-level members are ignored, as
// AWS's services ignore them.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return cannotParse(err, "")
	}
	return nil
}

func cannotParse(err error, prefix string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if prefix != "" {
			field = strings.TrimSuffix(prefix+"."+field, ".")
		}
		return findings.Invalid(findings.ReasonCannotParse, field, fmt.Sprintf("expected %s, got a JSON %s", te.Type, te.Value))
	}
	name := prefix
	if name == "" {
		name = "body"
	}
	return findings.Invalid(findings.ReasonCannotParse, name, "could not parse the request body as JSON: "+err.Error())
}

// strict decodes a member whose every field is known: a member of a filter the model does not
// have is refused, not ignored, so a typo does not silently widen a query.
func strict(raw json.RawMessage, path string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return findings.Invalid(findings.ReasonFieldValidationFailed, path, "has no member "+f)
		}
		return cannotParse(err, path)
	}
	return nil
}

// Wire shapes of the filters.
type (
	stringFilterWire struct {
		Comparison *string `json:"comparison,omitempty"`
		Value      *string `json:"value,omitempty"`
	}
	dateFilterWire struct {
		StartInclusive *float64 `json:"startInclusive,omitempty"`
		EndInclusive   *float64 `json:"endInclusive,omitempty"`
	}
	numberFilterWire struct {
		LowerInclusive *float64 `json:"lowerInclusive,omitempty"`
		UpperInclusive *float64 `json:"upperInclusive,omitempty"`
	}
	mapFilterWire struct {
		Comparison *string `json:"comparison,omitempty"`
		Key        *string `json:"key,omitempty"`
		Value      *string `json:"value,omitempty"`
	}
	portRangeFilterWire struct {
		BeginInclusive *int `json:"beginInclusive,omitempty"`
		EndInclusive   *int `json:"endInclusive,omitempty"`
	}
	packageFilterWire struct {
		Name                 *stringFilterWire `json:"name,omitempty"`
		Version              *stringFilterWire `json:"version,omitempty"`
		Release              *stringFilterWire `json:"release,omitempty"`
		Architecture         *stringFilterWire `json:"architecture,omitempty"`
		SourceLayerHash      *stringFilterWire `json:"sourceLayerHash,omitempty"`
		SourceLambdaLayerArn *stringFilterWire `json:"sourceLambdaLayerArn,omitempty"`
		FilePath             *stringFilterWire `json:"filePath,omitempty"`
		Epoch                *numberFilterWire `json:"epoch,omitempty"`
		// Reachability is a Lading member: a Go package's PRESENT, ABSENT or UNKNOWN.
		Reachability *stringFilterWire `json:"reachability,omitempty"`
	}
)

func (w *stringFilterWire) domain(path string) (findings.StringFilter, error) {
	var missing []string
	if w.Comparison == nil {
		missing = append(missing, "comparison")
	}
	if w.Value == nil {
		missing = append(missing, "value")
	}
	if len(missing) > 0 {
		return findings.StringFilter{}, findings.Invalid(findings.ReasonFieldValidationFailed, path+"."+missing[0], "is required")
	}
	return findings.StringFilter{Comparison: findings.Comparison(*w.Comparison), Value: *w.Value}, nil
}

func (w *numberFilterWire) domain() findings.NumberFilter {
	return findings.NumberFilter{Lower: w.LowerInclusive, Upper: w.UpperInclusive}
}

// epochTime reads a timestamp: epoch seconds, as a JSON number.
func epochTime(path string, v *float64) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) || math.Abs(*v) > 1e11 {
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, path, "is not a timestamp")
	}
	sec, frac := math.Modf(*v)
	t := time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return &t, nil
}

// decodeCriteria reads a FilterCriteria member (path names it in errors) into the domain's
// criteria. A member the model does not have is refused.
func decodeCriteria(raw json.RawMessage, path string) (findings.Criteria, error) {
	var c findings.Criteria
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return c, cannotParse(err, path)
	}
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names) // the first error named is the same every time
	for _, name := range names {
		member := members[name]
		if string(member) == "null" {
			continue
		}
		f := findings.Field(name)
		p := path + "." + name
		kind, ok := findings.KindOf(f)
		if !ok {
			return c, findings.Invalid(findings.ReasonFieldValidationFailed, p, "is not a member of FilterCriteria")
		}
		var err error
		switch kind {
		case findings.KindString:
			var list []stringFilterWire
			if err = strict(member, p, &list); err == nil {
				out := make([]findings.StringFilter, len(list))
				for i := range list {
					if out[i], err = list[i].domain(fmt.Sprintf("%s[%d]", p, i)); err != nil {
						break
					}
				}
				c.Strings = setMember(c.Strings, f, out)
			}
		case findings.KindDate:
			var list []dateFilterWire
			if err = strict(member, p, &list); err == nil {
				out := make([]findings.DateFilter, len(list))
				for i, w := range list {
					if out[i].Start, err = epochTime(fmt.Sprintf("%s[%d].startInclusive", p, i), w.StartInclusive); err != nil {
						break
					}
					if out[i].End, err = epochTime(fmt.Sprintf("%s[%d].endInclusive", p, i), w.EndInclusive); err != nil {
						break
					}
				}
				c.Dates = setMember(c.Dates, f, out)
			}
		case findings.KindNumber:
			var list []numberFilterWire
			if err = strict(member, p, &list); err == nil {
				out := make([]findings.NumberFilter, len(list))
				for i := range list {
					out[i] = list[i].domain()
				}
				c.Numbers = setMember(c.Numbers, f, out)
			}
		case findings.KindMap:
			var list []mapFilterWire
			if err = strict(member, p, &list); err == nil {
				out := make([]findings.MapFilter, len(list))
				for i, w := range list {
					if w.Comparison == nil || w.Key == nil {
						err = findings.Invalid(findings.ReasonFieldValidationFailed, fmt.Sprintf("%s[%d]", p, i), "comparison and key are required")
						break
					}
					out[i] = findings.MapFilter{Comparison: findings.Comparison(*w.Comparison), Key: *w.Key}
					if w.Value != nil {
						out[i].Value = *w.Value
					}
				}
				c.Maps = setMember(c.Maps, f, out)
			}
		case findings.KindPortRange:
			var list []portRangeFilterWire
			if err = strict(member, p, &list); err == nil {
				out := make([]findings.PortRangeFilter, len(list))
				for i, w := range list {
					out[i] = findings.PortRangeFilter{Begin: w.BeginInclusive, End: w.EndInclusive}
				}
				c.PortRanges = setMember(c.PortRanges, f, out)
			}
		case findings.KindPackage:
			var list []packageFilterWire
			if err = strict(member, p, &list); err == nil {
				c.Packages = make([]findings.PackageFilter, len(list))
				if len(list) == 0 {
					// Kept as a criterion with no filters, so that validation refuses it.
					c.Packages = []findings.PackageFilter{}
				}
				for i, w := range list {
					if c.Packages[i], err = w.domain(fmt.Sprintf("%s[%d]", p, i)); err != nil {
						break
					}
				}
				if len(list) == 0 {
					err = findings.Invalid(findings.ReasonFieldValidationFailed, p, fmt.Sprintf("must have between 1 and %d filters", findings.MaxFiltersPerCriterion))
				}
			}
		}
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

func setMember[T any](m map[findings.Field][]T, f findings.Field, v []T) map[findings.Field][]T {
	if m == nil {
		m = map[findings.Field][]T{}
	}
	m[f] = v
	return m
}

func (w packageFilterWire) domain(path string) (findings.PackageFilter, error) {
	var pf findings.PackageFilter
	for _, m := range []struct {
		name string
		in   *stringFilterWire
		out  **findings.StringFilter
	}{{"name", w.Name, &pf.Name}, {"version", w.Version, &pf.Version}, {"release", w.Release, &pf.Release},
		{"architecture", w.Architecture, &pf.Architecture}, {"sourceLayerHash", w.SourceLayerHash, &pf.SourceLayerHash},
		{"sourceLambdaLayerArn", w.SourceLambdaLayerArn, &pf.SourceLambdaLayerArn}, {"filePath", w.FilePath, &pf.FilePath},
		{"reachability", w.Reachability, &pf.Reachability}} {
		if m.in == nil {
			continue
		}
		sf, err := m.in.domain(path + "." + m.name)
		if err != nil {
			return pf, err
		}
		*m.out = &sf
	}
	if w.Epoch != nil {
		nf := w.Epoch.domain()
		pf.Epoch = &nf
	}
	return pf, nil
}

// decodeUnion reads a union member (an object of which exactly one member may be set, as
// aggregationRequest): it returns the member set and its value. Two members set, or one the
// union does not have, is a ValidationException naming them.
func decodeUnion(raw json.RawMessage, path string, members []string) (string, json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", nil, cannotParse(err, path)
	}
	var set []string
	for k, v := range m {
		if string(v) == "null" {
			continue
		}
		if !slices.Contains(members, k) {
			return "", nil, findings.Invalid(findings.ReasonFieldValidationFailed, path+"."+k, "is not a member of the union")
		}
		set = append(set, k)
	}
	slices.Sort(set)
	switch len(set) {
	case 0:
		return "", nil, findings.Invalid(findings.ReasonFieldValidationFailed, path, "a union must have one member set")
	case 1:
		return set[0], m[set[0]], nil
	}
	return "", nil, findings.Invalid(findings.ReasonFieldValidationFailed, path, "a union must have exactly one member set, not "+strings.Join(set, " and "))
}
