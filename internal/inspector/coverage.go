package inspector

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lading-registry/lading/internal/findings"
)

// Coverage is what ListCoverage and ListCoverageStatistics need (findings.Coverage).
type Coverage interface {
	List(ctx context.Context, in findings.CoverageInput) (findings.CoverageOutput, error)
	Statistics(ctx context.Context, in findings.StatisticsInput) (findings.StatisticsOutput, error)
}

type coverageNumberFilterWire struct {
	LowerInclusive *int64 `json:"lowerInclusive"`
	UpperInclusive *int64 `json:"upperInclusive"`
}

// decodeCoverageCriteria reads a CoverageFilterCriteria member. A member the model does not
// have, or an unknown member of a filter, is refused.
func decodeCoverageCriteria(raw json.RawMessage, path string) (findings.CoverageCriteria, error) {
	var c findings.CoverageCriteria
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return c, cannotParse(err, path)
	}
	for _, name := range sortedNames(members) {
		member := members[name]
		if string(member) == "null" {
			continue
		}
		f, p := findings.Field(name), path+"."+name
		kind, ok := findings.CoverageKindOf(f)
		if !ok {
			return c, findings.Invalid(findings.ReasonFieldValidationFailed, p, "is not a member of CoverageFilterCriteria")
		}
		switch kind {
		case findings.KindString:
			var list []stringFilterWire
			if err := strict(member, p, &list); err != nil {
				return c, err
			}
			out := make([]findings.StringFilter, len(list))
			for i := range list {
				var err error
				if out[i], err = list[i].domain(fmt.Sprintf("%s[%d]", p, i)); err != nil {
					return c, err
				}
			}
			c.Strings = setMember(c.Strings, f, out)
		case findings.KindDate:
			var list []dateFilterWire
			if err := strict(member, p, &list); err != nil {
				return c, err
			}
			out := make([]findings.DateFilter, len(list))
			for i, w := range list {
				var err error
				if out[i].Start, err = epochTime(fmt.Sprintf("%s[%d].startInclusive", p, i), w.StartInclusive); err != nil {
					return c, err
				}
				if out[i].End, err = epochTime(fmt.Sprintf("%s[%d].endInclusive", p, i), w.EndInclusive); err != nil {
					return c, err
				}
			}
			c.Dates = setMember(c.Dates, f, out)
		case findings.KindNumber:
			var list []coverageNumberFilterWire
			if err := strict(member, p, &list); err != nil {
				return c, err
			}
			out := make([]findings.NumberFilter, len(list))
			for i, w := range list {
				if w.LowerInclusive != nil {
					v := float64(*w.LowerInclusive)
					out[i].Lower = &v
				}
				if w.UpperInclusive != nil {
					v := float64(*w.UpperInclusive)
					out[i].Upper = &v
				}
			}
			c.Numbers = setMember(c.Numbers, f, out)
		case findings.KindMap:
			var list []mapFilterWire
			if err := strict(member, p, &list); err != nil {
				return c, err
			}
			out := make([]findings.MapFilter, len(list))
			for i, w := range list {
				if w.Comparison == nil || w.Key == nil {
					return c, findings.Invalid(findings.ReasonFieldValidationFailed, fmt.Sprintf("%s[%d]", p, i), "comparison and key are required")
				}
				out[i] = findings.MapFilter{Comparison: findings.Comparison(*w.Comparison), Key: *w.Key}
				if w.Value != nil {
					out[i].Value = *w.Value
				}
			}
			c.Maps = setMember(c.Maps, f, out)
		}
	}
	return c, nil
}

type (
	scanStatusWire struct {
		StatusCode string `json:"statusCode"`
		Reason     string `json:"reason"`
		// NotEvaluatedPackages is Lading's: how many packages of the image the scan could not
		// evaluate (their version does not compare, an advisory's range does not compile), so
		// a SUCCESSFUL scan is not read as a clean bill. Absent when none.
		NotEvaluatedPackages int `json:"notEvaluatedPackages,omitempty"`
	}
	ecrRepositoryMetadata struct {
		Name          string `json:"name"`
		ScanFrequency string `json:"scanFrequency"`
	}
	ecrImageMetadata struct {
		Tags          []string `json:"tags"`
		ImagePulledAt *epoch   `json:"imagePulledAt,omitempty"`
		LastInUseAt   *epoch   `json:"lastInUseAt,omitempty"`
	}
	resourceMetadata struct {
		ECRRepository *ecrRepositoryMetadata `json:"ecrRepository,omitempty"`
		ECRImage      *ecrImageMetadata      `json:"ecrImage,omitempty"`
	}
	coveredResource struct {
		ResourceType     string           `json:"resourceType"`
		ResourceID       string           `json:"resourceId"`
		AccountID        string           `json:"accountId"`
		ScanType         string           `json:"scanType"`
		ScanStatus       scanStatusWire   `json:"scanStatus"`
		ResourceMetadata resourceMetadata `json:"resourceMetadata"`
		LastScannedAt    *epoch           `json:"lastScannedAt,omitempty"`
	}
)

func (h *Handler) listCoverage(ctx context.Context, c *call, body []byte) (any, error) {
	if h.cfg.Coverage == nil {
		return nil, notImplemented(c.op)
	}
	var in struct {
		FilterCriteria json.RawMessage `json:"filterCriteria"`
		MaxResults     *int            `json:"maxResults"`
		NextToken      *string         `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	crit, err := decodeCoverageCriteria(in.FilterCriteria, "filterCriteria")
	if err != nil {
		return nil, err
	}
	page, err := h.cfg.Coverage.List(ctx, findings.CoverageInput{Op: c.op, Criteria: crit, MaxResults: in.MaxResults, NextToken: in.NextToken})
	if err != nil {
		return nil, err
	}
	out := struct {
		CoveredResources []coveredResource `json:"coveredResources"`
		NextToken        string            `json:"nextToken,omitempty"`
	}{CoveredResources: make([]coveredResource, 0, len(page.Resources)), NextToken: page.NextToken}
	for _, r := range page.Resources {
		cr := coveredResource{ResourceType: r.ResourceType, ResourceID: r.ResourceID, AccountID: h.cfg.RegistryID, ScanType: "PACKAGE",
			ScanStatus:       scanStatusWire{StatusCode: r.StatusCode, Reason: r.Reason},
			ResourceMetadata: resourceMetadata{ECRRepository: &ecrRepositoryMetadata{Name: r.Row.Repository, ScanFrequency: r.RepositoryScanFrequency}}}
		if !r.Row.LastScannedAt.IsZero() {
			cr.LastScannedAt = epochOf(r.Row.LastScannedAt)
		}
		if r.Row.Digest != "" {
			img := &ecrImageMetadata{Tags: r.Row.Tags}
			if img.Tags == nil {
				img.Tags = []string{}
			}
			if !r.Row.LastPulledAt.IsZero() {
				img.ImagePulledAt, img.LastInUseAt = epochOf(r.Row.LastPulledAt), epochOf(r.Row.LastPulledAt)
			}
			cr.ResourceMetadata.ECRImage = img
			if r.Row.Scan != nil {
				cr.ScanStatus.NotEvaluatedPackages = r.Row.Scan.NotEvaluatedPackages
			}
		}
		out.CoveredResources = append(out.CoveredResources, cr)
	}
	return out, nil
}

func (h *Handler) listCoverageStatistics(ctx context.Context, c *call, body []byte) (any, error) {
	if h.cfg.Coverage == nil {
		return nil, notImplemented(c.op)
	}
	var in struct {
		FilterCriteria json.RawMessage `json:"filterCriteria"`
		GroupBy        *string         `json:"groupBy"`
		NextToken      *string         `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	crit, err := decodeCoverageCriteria(in.FilterCriteria, "filterCriteria")
	if err != nil {
		return nil, err
	}
	si := findings.StatisticsInput{Op: c.op, Criteria: crit, NextToken: in.NextToken}
	if in.GroupBy != nil {
		si.GroupBy = findings.GroupKey(*in.GroupBy)
	}
	page, err := h.cfg.Coverage.Statistics(ctx, si)
	if err != nil {
		return nil, err
	}
	type count struct {
		Count    int64  `json:"count"`
		GroupKey string `json:"groupKey"`
	}
	out := struct {
		CountsByGroup []count `json:"countsByGroup,omitempty"`
		TotalCounts   int64   `json:"totalCounts"`
		NextToken     string  `json:"nextToken,omitempty"`
	}{TotalCounts: page.Total, NextToken: page.NextToken}
	for _, g := range page.Groups {
		out.CountsByGroup = append(out.CountsByGroup, count{Count: g.Count, GroupKey: g.Key})
	}
	return out, nil
}

// notImplemented answers an operation whose service the face was not given.
func notImplemented(op string) error {
	return &apiError{Type: errNotImplemented, Status: 501, Message: "Lading does not implement the Inspector2 operation " + op + " yet"}
}
