package findings

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/kev"
)

// Store is what the service needs from the metadata store.
type Store interface {
	// QueryFindings returns the ENHANCED findings of images the registry holds that match
	// q, in q's order, after q.After, at most q.Limit.
	QueryFindings(ctx context.Context, q Query) ([]Listed, error)
	// FindingsByARN returns the findings with these ARNs that exist (in no particular order).
	FindingsByARN(ctx context.Context, arns []string) ([]Listed, error)
}

// Advisories gives the current advisory index (the vulndb watcher's).
type Advisories interface {
	Index() *advisory.Index
}

// Service answers queries of findings and vulnerabilities for every face.
type Service struct {
	store   Store
	advs    Advisories
	kev     *kev.Catalog
	account string
	region  string
}

// NewService returns a service over a store; advs and cat may be nil (no advisory details, no
// known exploits).
func NewService(st Store, advs Advisories, cat *kev.Catalog, account, region string) *Service {
	return &Service{store: st, advs: advs, kev: cat, account: account, region: region}
}

// ListInput is a listing request, already in the domain's types.
type ListInput struct {
	// Op is the operation asking: tokens are bound to it.
	Op         string
	Criteria   Criteria
	Sort       *Sort
	MaxResults *int
	NextToken  *string
}

// ListOutput is a page.
type ListOutput struct {
	Findings  []Listed
	NextToken string // "" on the last page
}

// List returns a page of findings.
func (s *Service) List(ctx context.Context, in ListInput) (ListOutput, error) {
	if err := Validate("filterCriteria", in.Criteria, in.Sort); err != nil {
		return ListOutput{}, err
	}
	limit := DefaultPageSize
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > MaxPageSize {
			return ListOutput{}, Invalid(ReasonFieldValidationFailed, "maxResults", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
		}
		limit = *in.MaxResults
	}
	var sort Sort
	if in.Sort != nil {
		sort = *in.Sort
	}
	q := Query{Criteria: in.Criteria, Sort: sort, Limit: limit + 1, Account: s.account, Region: s.region, Exploited: s.kev.IDs()}
	if in.NextToken != nil && *in.NextToken != "" {
		cur, err := DecodeToken(in.Op, in.Criteria, sort, *in.NextToken)
		if err != nil {
			return ListOutput{}, err
		}
		q.After = &cur
	}
	rows, err := s.store.QueryFindings(ctx, q)
	if err != nil {
		return ListOutput{}, fmt.Errorf("list findings: %w", err)
	}
	out := ListOutput{Findings: rows}
	if len(rows) > limit {
		out.Findings = rows[:limit]
		out.NextToken = EncodeToken(in.Op, in.Criteria, sort, rows[limit-1].Cursor)
	}
	return out, nil
}

// MaxDetailARNs is how many findings BatchGetFindingDetails takes at once.
const MaxDetailARNs = 10

// Detail is what BatchGetFindingDetails says of a finding beyond the finding itself.
type Detail struct {
	FindingARN    string
	Exploit       *kev.Entry // nil unless the vulnerability is in the KEV catalogue
	ReferenceURLs []string
	CWEs          []string
}

// DetailsOutput has a Detail per found ARN, in the order asked, and the ARNs not found.
type DetailsOutput struct {
	Details  []Detail
	NotFound []string
}

// Details looks up findings by ARN.
func (s *Service) Details(ctx context.Context, arns []string) (DetailsOutput, error) {
	if len(arns) < 1 || len(arns) > MaxDetailARNs {
		return DetailsOutput{}, Invalid(ReasonFieldValidationFailed, "findingArns", fmt.Sprintf("must have between 1 and %d items", MaxDetailARNs))
	}
	for i, a := range arns {
		if len(a) < 1 || len(a) > 1024 {
			return DetailsOutput{}, Invalid(ReasonFieldValidationFailed, fmt.Sprintf("findingArns[%d]", i), "length must be between 1 and 1024")
		}
	}
	rows, err := s.store.FindingsByARN(ctx, arns)
	if err != nil {
		return DetailsOutput{}, fmt.Errorf("finding details: %w", err)
	}
	byARN := make(map[string]Listed, len(rows))
	for _, r := range rows {
		byARN[r.Finding.ARN] = r
	}
	var out DetailsOutput
	for _, a := range arns {
		r, ok := byARN[a]
		if !ok {
			out.NotFound = append(out.NotFound, a)
			continue
		}
		out.Details = append(out.Details, s.detail(r))
	}
	return out, nil
}

// storedDetail is the part of a stored finding's detail (scanning.Detail's JSON) the service
// reads.
type storedDetail struct {
	Finding struct {
		VulnerabilityID string   `json:"vulnerabilityId"`
		Aliases         []string `json:"aliases"`
		AdvisoryIDs     []string `json:"advisoryIds"`
		ReferenceURLs   []string `json:"referenceUrls"`
	} `json:"finding"`
}

func (s *Service) detail(r Listed) Detail {
	d := Detail{FindingARN: r.Finding.ARN}
	var sd storedDetail
	_ = json.Unmarshal(r.Finding.Detail, &sd)
	if e, ok := s.kev.Lookup(append([]string{r.Finding.VulnerabilityID}, sd.Finding.Aliases...)...); ok {
		d.Exploit = &e
		d.CWEs = append(d.CWEs, e.CWEs...)
	}
	d.ReferenceURLs = sd.Finding.ReferenceURLs
	if s.advs != nil {
		if ix := s.advs.Index(); ix != nil {
			for _, id := range sd.Finding.AdvisoryIDs {
				if a := ix.Advisory(id); a != nil {
					d.CWEs = append(d.CWEs, CWEs(a)...)
				}
			}
		}
	}
	slices.Sort(d.CWEs)
	d.CWEs = slices.Compact(d.CWEs)
	return d
}

// Exploit returns the KEV entry of a vulnerability known by any of ids.
func (s *Service) Exploit(ids ...string) (kev.Entry, bool) { return s.kev.Lookup(ids...) }

// CWEs are the weakness ids an advisory names (GitHub's database_specific.cwe_ids).
func CWEs(a *advisory.Advisory) []string {
	var ds struct {
		CWEIDs []string `json:"cwe_ids"`
	}
	if len(a.DatabaseSpecific) == 0 || json.Unmarshal(a.DatabaseSpecific, &ds) != nil {
		return nil
	}
	var out []string
	for _, c := range ds.CWEIDs {
		if strings.HasPrefix(c, "CWE-") {
			out = append(out, c)
		}
	}
	return out
}
