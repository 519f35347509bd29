package inspector

import (
	"context"
	"encoding/json"
	"maps"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/suppression"
)

// Rules is what the face needs of the suppression rules (internal/suppression).
type Rules interface {
	Create(ctx context.Context, in suppression.Input) (suppression.Rule, error)
	Update(ctx context.Context, arn string, in suppression.Input) (suppression.Rule, error)
	Delete(ctx context.Context, arn string) (suppression.Rule, error)
	List(ctx context.Context, in suppression.ListInput) (suppression.ListOutput, error)
}

// filterWire is Inspector's Filter.
type filterWire struct {
	Action      string            `json:"action"`
	ARN         string            `json:"arn"`
	CreatedAt   *epoch            `json:"createdAt"`
	Criteria    map[string]any    `json:"criteria"`
	Description string            `json:"description,omitempty"`
	Name        string            `json:"name"`
	OwnerID     string            `json:"ownerId"`
	Reason      string            `json:"reason,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	UpdatedAt   *epoch            `json:"updatedAt"`
}

type arnOutput struct {
	ARN string `json:"arn"`
}

// filterInput is what CreateFilter and UpdateFilter send.
type filterInput struct {
	Action         *string           `json:"action"`
	Description    *string           `json:"description"`
	FilterCriteria json.RawMessage   `json:"filterCriteria"`
	Name           *string           `json:"name"`
	Reason         *string           `json:"reason"`
	Tags           map[string]string `json:"tags"`
	FilterARN      *string           `json:"filterArn"`
}

func (w filterInput) domain() (suppression.Input, error) {
	in := suppression.Input{Name: w.Name, Description: w.Description, Reason: w.Reason, Tags: w.Tags}
	if w.Action != nil {
		a := suppression.Action(*w.Action)
		in.Action = &a
	}
	if len(w.FilterCriteria) > 0 && string(w.FilterCriteria) != "null" {
		c, err := decodeCriteria(w.FilterCriteria, "filterCriteria")
		if err != nil {
			return in, err
		}
		in.Criteria = &c
	}
	return in, nil
}

func (h *Handler) rules() (Rules, error) {
	if h.cfg.Rules == nil {
		return nil, &apiError{Type: errNotImplemented, Status: 501, Message: "suppression rules are not configured"}
	}
	return h.cfg.Rules, nil
}

func (h *Handler) createFilter(ctx context.Context, _ *call, body []byte) (any, error) {
	rules, err := h.rules()
	if err != nil {
		return nil, err
	}
	var w filterInput
	if err := decode(body, &w); err != nil {
		return nil, err
	}
	in, err := w.domain()
	if err != nil {
		return nil, err
	}
	r, err := rules.Create(ctx, in)
	if err != nil {
		return nil, err
	}
	return arnOutput{r.ARN}, nil
}

func (h *Handler) updateFilter(ctx context.Context, _ *call, body []byte) (any, error) {
	rules, err := h.rules()
	if err != nil {
		return nil, err
	}
	var w filterInput
	if err := decode(body, &w); err != nil {
		return nil, err
	}
	if w.FilterARN == nil {
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "filterArn", "is required")
	}
	w.Tags = nil // not a member of UpdateFilter
	in, err := w.domain()
	if err != nil {
		return nil, err
	}
	r, err := rules.Update(ctx, *w.FilterARN, in)
	if err != nil {
		return nil, err
	}
	return arnOutput{r.ARN}, nil
}

func (h *Handler) deleteFilter(ctx context.Context, _ *call, body []byte) (any, error) {
	rules, err := h.rules()
	if err != nil {
		return nil, err
	}
	var w struct {
		ARN *string `json:"arn"`
	}
	if err := decode(body, &w); err != nil {
		return nil, err
	}
	if w.ARN == nil {
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "arn", "is required")
	}
	r, err := rules.Delete(ctx, *w.ARN)
	if err != nil {
		return nil, err
	}
	return arnOutput{r.ARN}, nil
}

func (h *Handler) listFilters(ctx context.Context, _ *call, body []byte) (any, error) {
	rules, err := h.rules()
	if err != nil {
		return nil, err
	}
	var w struct {
		Action     *string  `json:"action"`
		ARNs       []string `json:"arns"`
		MaxResults *int     `json:"maxResults"`
		NextToken  *string  `json:"nextToken"`
	}
	if err := decode(body, &w); err != nil {
		return nil, err
	}
	in := suppression.ListInput{ARNs: w.ARNs, MaxResults: w.MaxResults, NextToken: w.NextToken}
	if w.Action != nil {
		a := suppression.Action(*w.Action)
		in.Action = &a
	}
	page, err := rules.List(ctx, in)
	if err != nil {
		return nil, err
	}
	out := struct {
		Filters   []filterWire `json:"filters"`
		NextToken string       `json:"nextToken,omitempty"`
	}{Filters: make([]filterWire, 0, len(page.Rules)), NextToken: page.NextToken}
	for _, r := range page.Rules {
		fw := filterWire{Action: string(r.Action), ARN: r.ARN, CreatedAt: epochOf(r.CreatedAt), Criteria: encodeCriteria(r.Criteria),
			Description: r.Description, Name: r.Name, OwnerID: r.Owner, Reason: r.Reason, UpdatedAt: epochOf(r.UpdatedAt)}
		if len(r.Tags) > 0 {
			fw.Tags = maps.Clone(r.Tags)
		}
		out.Filters = append(out.Filters, fw)
	}
	return out, nil
}

// encodeCriteria is decodeCriteria's inverse: the domain's criteria in FilterCriteria's wire
// shape (timestamps as epoch seconds).
func encodeCriteria(c findings.Criteria) map[string]any {
	out := map[string]any{}
	for f, list := range c.Strings {
		out[string(f)] = encodeStrings(list)
	}
	secs := func(t *time.Time) *float64 {
		if t == nil {
			return nil
		}
		v := float64(t.UnixNano()) / 1e9
		return &v
	}
	for f, list := range c.Dates {
		ws := make([]dateFilterWire, len(list))
		for i, d := range list {
			ws[i] = dateFilterWire{StartInclusive: secs(d.Start), EndInclusive: secs(d.End)}
		}
		out[string(f)] = ws
	}
	for f, list := range c.Numbers {
		ws := make([]numberFilterWire, len(list))
		for i, n := range list {
			ws[i] = numberFilterWire{LowerInclusive: n.Lower, UpperInclusive: n.Upper}
		}
		out[string(f)] = ws
	}
	for f, list := range c.Maps {
		ws := make([]mapFilterWire, len(list))
		for i, m := range list {
			ws[i] = mapFilterWire{Comparison: ptrTo(string(m.Comparison)), Key: ptrTo(m.Key), Value: ptrTo(m.Value)}
		}
		out[string(f)] = ws
	}
	for f, list := range c.PortRanges {
		ws := make([]portRangeFilterWire, len(list))
		for i, p := range list {
			ws[i] = portRangeFilterWire{BeginInclusive: p.Begin, EndInclusive: p.End}
		}
		out[string(f)] = ws
	}
	if len(c.Packages) > 0 {
		ws := make([]packageFilterWire, len(c.Packages))
		for i, p := range c.Packages {
			ws[i] = packageFilterWire{Name: encodeString(p.Name), Version: encodeString(p.Version), Release: encodeString(p.Release),
				Architecture: encodeString(p.Architecture), SourceLayerHash: encodeString(p.SourceLayerHash),
				SourceLambdaLayerArn: encodeString(p.SourceLambdaLayerArn), FilePath: encodeString(p.FilePath),
				Reachability: encodeString(p.Reachability)}
			if p.Epoch != nil {
				ws[i].Epoch = &numberFilterWire{LowerInclusive: p.Epoch.Lower, UpperInclusive: p.Epoch.Upper}
			}
		}
		out[string(findings.VulnerablePackages)] = ws
	}
	return out
}

func encodeStrings(list []findings.StringFilter) []stringFilterWire {
	ws := make([]stringFilterWire, len(list))
	for i, sf := range list {
		ws[i] = *encodeString(&sf)
	}
	return ws
}

func encodeString(sf *findings.StringFilter) *stringFilterWire {
	if sf == nil {
		return nil
	}
	return &stringFilterWire{Comparison: ptrTo(string(sf.Comparison)), Value: ptrTo(sf.Value)}
}

func ptrTo[T any](v T) *T { return &v }
