package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
)

// coveragePageSize is how many images the coverage page shows at once.
const coveragePageSize = 50

// coverageReasons are the scan status reasons an image of the registry may have, for the
// coverage page's filter (findings.coverageStatus decides which applies).
var coverageReasons = []string{findings.ReasonSuccessful, findings.ReasonPendingInitialScan, findings.ReasonManual, findings.ReasonScanOnPush,
	findings.ReasonUnsupportedOS, findings.ReasonUnsupportedMedia, findings.ReasonExpired, findings.ReasonInternalError}

type coverageRow struct {
	Repository, RepoURL, Digest, ImageURL string
	Tags                                  []string
	Status, Reason, Frequency             string
	PushedAt, LastScannedAt               time.Time
}

// coverageQuery is the coverage page's query string, bounded: the status code, the reason,
// an exact repository name and a page token (the domain's; one it refuses is the first page).
type coverageQuery struct {
	Status, Reason, Repository, Token string
}

func parseCoverageQuery(q url.Values) coverageQuery {
	cq := coverageQuery{
		Status: oneOf(q.Get("status"), findings.StatusCodeActive, findings.StatusCodeInactive),
		Reason: oneOf(q.Get("reason"), coverageReasons...),
	}
	if r := q.Get("repository"); len(r) <= 256 {
		cq.Repository = r
	}
	if t := q.Get("token"); len(t) <= 4096 {
		cq.Token = t
	}
	return cq
}

// criteria are the coverage criteria of the page: images only, and its filters (EQUALS).
func (cq coverageQuery) criteria() findings.CoverageCriteria {
	eq := func(v string) []findings.StringFilter {
		return []findings.StringFilter{{Comparison: findings.Equals, Value: v}}
	}
	c := findings.CoverageCriteria{Strings: map[findings.Field][]findings.StringFilter{findings.CovResourceType: eq(findings.ResourceImage)}}
	if cq.Status != "" {
		c.Strings[findings.CovScanStatusCode] = eq(cq.Status)
	}
	if cq.Reason != "" {
		c.Strings[findings.CovScanStatusReason] = eq(cq.Reason)
	}
	if cq.Repository != "" {
		c.Strings[findings.CovRepositoryName] = eq(cq.Repository)
	}
	return c
}

func (cq coverageQuery) url(token string) string {
	v := url.Values{}
	for k, s := range map[string]string{"status": cq.Status, "reason": cq.Reason, "repository": cq.Repository, "token": token} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return Prefix + "coverage"
	}
	return Prefix + "coverage?" + v.Encode()
}

// coverage is the coverage page: every image with its scan status and reason, as ListCoverage
// answers, a page at a time.
func (h *Handler) coverage(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	if !h.permit(w, r, s, h.cfg.Coverage != nil, "inspector2:ListCoverage") {
		return
	}
	pol, err := h.cfg.Store.ScanningPolicy(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	cq := parseCoverageQuery(r.URL.Query())
	size := coveragePageSize
	in := findings.CoverageInput{Op: "ConsoleCoverage", Criteria: cq.criteria(), MaxResults: &size}
	if cq.Token != "" {
		in.NextToken = &cq.Token
	}
	out, err := h.cfg.Coverage.List(ctx, in)
	var invalid *findings.ValidationError
	if errors.As(err, &invalid) && cq.Token != "" {
		// A token of other filters, or not one the domain issued: the first page.
		cq.Token, in.NextToken = "", nil
		out, err = h.cfg.Coverage.List(ctx, in)
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	rows := make([]coverageRow, len(out.Resources))
	for i, res := range out.Resources {
		row := res.Row
		rows[i] = coverageRow{Repository: row.Repository, RepoURL: repoURL(row.Repository), Digest: row.Digest, ImageURL: imageURL(row.Repository, row.Digest),
			Tags: row.Tags, Status: res.StatusCode, Reason: res.Reason, Frequency: frequencyLabel(res.RepositoryScanFrequency),
			PushedAt: row.PushedAt, LastScannedAt: row.LastScannedAt}
	}
	data := map[string]any{"Title": "Coverage", "Rows": rows, "Query": cq, "Reasons": coverageReasons,
		"Statuses": []string{findings.StatusCodeActive, findings.StatusCodeInactive}, "Basic": pol.ScanType != policy.ScanTypeEnhanced}
	if cq.Token != "" {
		data["First"] = cq.url("")
	}
	if out.NextToken != "" {
		data["Next"] = cq.url(out.NextToken)
	}
	h.render(w, r, s, http.StatusOK, "coverage", "coverage", data)
}

// coverageCounts are the overview's images in coverage: ACTIVE (scanned and kept current, or
// about to be) and INACTIVE (with the reasons the coverage page lists), counted by Inspector's
// coverage statistics. Enhanced is false under basic scanning, where Inspector covers nothing.
type coverageCounts struct {
	Known            bool
	Enhanced         bool
	Active, Inactive int64
}

func (h *Handler) coverageCounts(ctx context.Context, s *sessionCtx) (coverageCounts, error) {
	if h.cfg.Coverage == nil || !h.cfg.Authz.Allowed(ctx, s.Principal, "inspector2:ListCoverageStatistics", "*") {
		return coverageCounts{}, nil
	}
	pol, err := h.cfg.Store.ScanningPolicy(ctx)
	if err != nil {
		return coverageCounts{}, err
	}
	out := coverageCounts{Known: true, Enhanced: pol.ScanType == policy.ScanTypeEnhanced}
	if !out.Enhanced {
		return out, nil
	}
	in := findings.StatisticsInput{Op: "ConsoleOverview", GroupBy: findings.GroupScanStatusCode,
		Criteria: coverageQuery{}.criteria()}
	for {
		page, err := h.cfg.Coverage.Statistics(ctx, in)
		if err != nil {
			return coverageCounts{}, err
		}
		for _, g := range page.Groups {
			switch g.Key {
			case findings.StatusCodeActive:
				out.Active = g.Count
			case findings.StatusCodeInactive:
				out.Inactive = g.Count
			}
		}
		if page.NextToken == "" {
			return out, nil
		}
		in.NextToken = &page.NextToken
	}
}
