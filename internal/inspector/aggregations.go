package inspector

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/lading-registry/lading/internal/findings"
)

// decodeAggregation reads a ListFindingAggregations request body into the domain's request.
// aggregationRequest is a union: exactly one member, the one of aggregationType.
func decodeAggregation(body []byte, op string) (findings.Aggregation, error) {
	var in struct {
		AggregationType    *string            `json:"aggregationType"`
		NextToken          *string            `json:"nextToken"`
		MaxResults         *int               `json:"maxResults"`
		AccountIDs         []stringFilterWire `json:"accountIds"`
		AggregationRequest json.RawMessage    `json:"aggregationRequest"`
	}
	agg := findings.Aggregation{Op: op}
	if err := decode(body, &in); err != nil {
		return agg, err
	}
	if in.AggregationType == nil {
		return agg, findings.Invalid(findings.ReasonFieldValidationFailed, "aggregationType", "is required")
	}
	agg.Type, agg.NextToken, agg.MaxResults = findings.AggregationType(*in.AggregationType), in.NextToken, in.MaxResults
	if in.AccountIDs != nil {
		agg.AccountIDs = make([]findings.StringFilter, len(in.AccountIDs))
		for i := range in.AccountIDs {
			var err error
			if agg.AccountIDs[i], err = in.AccountIDs[i].domain(fmt.Sprintf("accountIds[%d]", i)); err != nil {
				return agg, err
			}
		}
	}
	if len(in.AggregationRequest) == 0 || string(in.AggregationRequest) == "null" {
		return agg, nil
	}
	var members []string
	for _, t := range findings.AggregationTypes() {
		members = append(members, findings.AggregationMember(t))
	}
	name, raw, err := decodeUnion(in.AggregationRequest, "aggregationRequest", members)
	if err != nil {
		return agg, err
	}
	if want := findings.AggregationMember(agg.Type); want != "" && name != want {
		return agg, findings.Invalid(findings.ReasonFieldValidationFailed, "aggregationRequest."+name,
			fmt.Sprintf("does not match aggregationType %s (its member is %s)", agg.Type, want))
	}
	if !agg.Type.Supported() {
		return agg, nil // groups nothing: its filters need no reading
	}
	return agg, decodeAggregationMember(raw, "aggregationRequest."+name, &agg)
}

// decodeAggregationMember reads the filters of an aggregation's request member by name; the
// domain decides which names the type has.
func decodeAggregationMember(raw json.RawMessage, path string, agg *findings.Aggregation) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return cannotParse(err, path)
	}
	for _, name := range sortedNames(members) {
		member := members[name]
		if string(member) == "null" {
			continue
		}
		p := path + "." + name
		switch name {
		case "sortBy", "sortOrder", "findingType", "resourceType":
			var v string
			if err := strict(member, p, &v); err != nil {
				return err
			}
			switch name {
			case "sortBy":
				agg.SortBy = findings.AggregationSort(v)
			case "sortOrder":
				agg.SortOrder = findings.Order(v)
			default:
				if agg.Enums == nil {
					agg.Enums = map[string]string{}
				}
				agg.Enums[name] = v
			}
		case "lastInUseAt":
			var list []dateFilterWire
			if err := strict(member, p, &list); err != nil {
				return err
			}
			out := make([]findings.DateFilter, len(list))
			for i, w := range list {
				var err error
				if out[i].Start, err = epochTime(fmt.Sprintf("%s[%d].startInclusive", p, i), w.StartInclusive); err != nil {
					return err
				}
				if out[i].End, err = epochTime(fmt.Sprintf("%s[%d].endInclusive", p, i), w.EndInclusive); err != nil {
					return err
				}
			}
			if agg.Dates == nil {
				agg.Dates = map[string][]findings.DateFilter{}
			}
			agg.Dates[name] = out
		case "inUseCount":
			var list []numberFilterWire
			if err := strict(member, p, &list); err != nil {
				return err
			}
			out := make([]findings.NumberFilter, len(list))
			for i := range list {
				out[i] = list[i].domain()
			}
			if agg.Numbers == nil {
				agg.Numbers = map[string][]findings.NumberFilter{}
			}
			agg.Numbers[name] = out
		default:
			var list []stringFilterWire
			if err := strict(member, p, &list); err != nil {
				return err
			}
			out := make([]findings.StringFilter, len(list))
			for i := range list {
				var err error
				if out[i], err = list[i].domain(fmt.Sprintf("%s[%d]", p, i)); err != nil {
					return err
				}
			}
			if agg.Strings == nil {
				agg.Strings = map[string][]findings.StringFilter{}
			}
			agg.Strings[name] = out
		}
	}
	return nil
}

func sortedNames(m map[string]json.RawMessage) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Response members of the aggregations.
type (
	severityCounts struct {
		All      int64 `json:"all"`
		Medium   int64 `json:"medium"`
		High     int64 `json:"high"`
		Critical int64 `json:"critical"`
	}
	repositoryAggregationResponse struct {
		Repository     string         `json:"repository"`
		AccountID      string         `json:"accountId"`
		AffectedImages int64          `json:"affectedImages"`
		SeverityCounts severityCounts `json:"severityCounts"`
	}
	ecrContainerAggregationResponse struct {
		ResourceID     string         `json:"resourceId"`
		ImageSha       string         `json:"imageSha"`
		Repository     string         `json:"repository"`
		Architecture   string         `json:"architecture,omitempty"`
		ImageTags      []string       `json:"imageTags"`
		AccountID      string         `json:"accountId"`
		LastInUseAt    *epoch         `json:"lastInUseAt,omitempty"`
		SeverityCounts severityCounts `json:"severityCounts"`
	}
	imageLayerAggregationResponse struct {
		Repository     string         `json:"repository"`
		ResourceID     string         `json:"resourceId"`
		LayerHash      string         `json:"layerHash"`
		AccountID      string         `json:"accountId"`
		SeverityCounts severityCounts `json:"severityCounts"`
	}
	packageAggregationResponse struct {
		PackageName    string         `json:"packageName"`
		AccountID      string         `json:"accountId"`
		SeverityCounts severityCounts `json:"severityCounts"`
	}
	titleAggregationResponse struct {
		Title           string         `json:"title"`
		VulnerabilityID string         `json:"vulnerabilityId,omitempty"`
		AccountID       string         `json:"accountId"`
		SeverityCounts  severityCounts `json:"severityCounts"`
	}
	findingTypeAggregationResponse struct {
		AccountID             string         `json:"accountId"`
		SeverityCounts        severityCounts `json:"severityCounts"`
		ExploitAvailableCount int64          `json:"exploitAvailableCount"`
		FixAvailableCount     int64          `json:"fixAvailableCount"`
	}
)

// imageResourceID is an image's resource id, as findings name it.
func (h *Handler) imageResourceID(repo, digest string) string {
	return "arn:aws:ecr:" + h.cfg.Region + ":" + h.cfg.RegistryID + ":repository/" + repo + "/" + digest
}

func (h *Handler) listFindingAggregations(ctx context.Context, c *call, body []byte) (any, error) {
	in, err := decodeAggregation(body, c.op)
	if err != nil {
		return nil, err
	}
	page, err := h.findings.Aggregate(ctx, in)
	if err != nil {
		return nil, err
	}
	out := struct {
		AggregationType string           `json:"aggregationType"`
		Responses       []map[string]any `json:"responses"`
		NextToken       string           `json:"nextToken,omitempty"`
	}{AggregationType: string(page.Type), Responses: make([]map[string]any, 0, len(page.Rows)), NextToken: page.NextToken}
	member := findings.AggregationMember(page.Type)
	for _, r := range page.Rows {
		counts := severityCounts(r.Counts)
		var v any
		switch page.Type {
		case findings.AggregateRepository:
			v = repositoryAggregationResponse{Repository: r.Repository, AccountID: h.cfg.RegistryID, AffectedImages: r.AffectedImages, SeverityCounts: counts}
		case findings.AggregateImage:
			resp := ecrContainerAggregationResponse{ResourceID: h.imageResourceID(r.Repository, r.Digest), ImageSha: r.Digest, Repository: r.Repository,
				Architecture: r.Architecture, ImageTags: r.Tags, AccountID: h.cfg.RegistryID, SeverityCounts: counts}
			if resp.ImageTags == nil {
				resp.ImageTags = []string{}
			}
			if !r.LastPulledAt.IsZero() {
				resp.LastInUseAt = epochOf(r.LastPulledAt)
			}
			v = resp
		case findings.AggregateImageLayer:
			v = imageLayerAggregationResponse{Repository: r.Repository, ResourceID: h.imageResourceID(r.Repository, r.Digest), LayerHash: r.LayerHash,
				AccountID: h.cfg.RegistryID, SeverityCounts: counts}
		case findings.AggregatePackage:
			v = packageAggregationResponse{PackageName: r.PackageName, AccountID: h.cfg.RegistryID, SeverityCounts: counts}
		case findings.AggregateTitle:
			v = titleAggregationResponse{Title: r.Title, VulnerabilityID: r.VulnerabilityID, AccountID: h.cfg.RegistryID, SeverityCounts: counts}
		case findings.AggregateFindingType:
			v = findingTypeAggregationResponse{AccountID: h.cfg.RegistryID, SeverityCounts: counts, ExploitAvailableCount: r.ExploitAvailable,
				FixAvailableCount: r.FixAvailable}
		default:
			continue
		}
		out.Responses = append(out.Responses, map[string]any{member: v})
	}
	return out, nil
}
