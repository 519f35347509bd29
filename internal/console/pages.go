package console

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/sbom"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// Severities as the console shows them, most severe first: Inspector's words.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED"}

type sevCount struct {
	Severity string
	Count    int64
}

// countsOf lists counts by severity in severities' order, ECR's UNDEFINED counted as UNTRIAGED.
func countsOf(m map[string]int) []sevCount {
	out := make([]sevCount, 0, len(severities))
	for _, s := range severities {
		n := m[s]
		if s == "UNTRIAGED" {
			n += m["UNDEFINED"]
		}
		out = append(out, sevCount{Severity: s, Count: int64(n)})
	}
	return out
}

// maxRepositories bounds what the repositories page lists.
const maxRepositories = 10000

// allRepositories lists the repositories the caller may describe, as DescribeRepositories
// shows them, whose names hold filter (lower case; "": all).
func (h *Handler) allRepositories(ctx context.Context, filter string) ([]store.Repository, error) {
	p := principalOf(ctx)
	var out []store.Repository
	after := ""
	for len(out) < maxRepositories {
		page, err := h.cfg.Store.ListRepositories(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		// The name filter first, then the page's authorization in one pass.
		byName := make(map[string]store.Repository, len(page))
		var names []string
		for _, r := range page {
			if filter == "" || strings.Contains(r.Name, filter) {
				byName[r.Name] = r
				names = append(names, r.Name)
			}
		}
		allowed, err := h.cfg.Authz.AllowedRepositories(ctx, p, "ecr:DescribeRepositories", names)
		if err != nil {
			return nil, err
		}
		for _, name := range allowed {
			out = append(out, byName[name])
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Name
	}
	return out, nil
}

func (h *Handler) allImages(ctx context.Context, repo string) ([]store.Manifest, error) {
	var out []store.Manifest
	after := ""
	for {
		page, err := h.cfg.Store.ListImages(ctx, repo, store.TagStatusAny, after, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out, nil
		}
		after = page[len(page)-1].Digest
	}
}

func repoURL(name string) string { return Prefix + "repository?" + url.Values{"name": {name}}.Encode() }

// ImageURL is the path of an image's page (other faces point people at it).
func ImageURL(repo, digest string) string { return imageURL(repo, digest) }

func imageURL(repo, digest string) string {
	return Prefix + "image?" + url.Values{"repository": {repo}, "digest": {digest}}.Encode()
}
func vulnURL(id string) string { return Prefix + "vulnerability?" + url.Values{"id": {id}}.Encode() }

// frequencyLabel is the scan frequency as the console's tables say it.
func frequencyLabel(f string) string {
	switch f {
	case policy.FrequencyContinuous:
		return "CONTINUOUS"
	case policy.FrequencyScanOnPush:
		return "SCAN ON PUSH"
	}
	return "MANUAL"
}

// ---- Overview ----

type vulnCount struct {
	ID, URL, Severity string
	Images            int64
}

type repoCount struct {
	Name, URL      string
	Critical, High int64
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "inspector2:ListFindings", "*"); err != nil {
		h.fail(w, r, s, err)
		return
	}
	// Each part is its own query over every finding or image. (Run side by side they took
	// longer than one after the other on a loaded 2-core machine: bench/console.)
	bySev, err := h.severityCounts(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	top, err := h.topVulnerabilities(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	worst, err := h.topRepositories(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	cov, err := h.coverageCounts(ctx, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	trend, err := h.trend(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "overview", "overview", map[string]any{
		"Title": "Overview", "Severities": bySev, "TopVulns": top, "TopRepos": worst, "Trend": trend,
		"Coverage": cov, "DB": h.dbInfo(ctx),
	})
}

// overviewRows is how many vulnerabilities and repositories the overview ranks.
const overviewRows = 10

// severityCounts counts the ACTIVE findings by severity, as ListFindingAggregations
// (FINDING_TYPE) counts them: critical, high, medium, and the rest (low, informational,
// untriaged) together.
func (h *Handler) severityCounts(ctx context.Context) ([]sevCount, error) {
	out, err := h.cfg.Findings.Aggregate(ctx, findings.Aggregation{Op: "ConsoleOverview", Type: findings.AggregateFindingType})
	if err != nil {
		return nil, err
	}
	var c findings.SeverityCounts
	for _, row := range out.Rows {
		c.All += row.Counts.All
		c.Critical += row.Counts.Critical
		c.High += row.Counts.High
		c.Medium += row.Counts.Medium
	}
	return []sevCount{{"CRITICAL", c.Critical}, {"HIGH", c.High}, {"MEDIUM", c.Medium},
		{"LOW", max(0, c.All-c.Critical-c.High-c.Medium)}}, nil
}

// topVulnerabilities are the vulnerabilities ACTIVE in the most images (TITLE aggregation by
// finding count: a vulnerability is one finding per image), with their advisories' severity.
func (h *Handler) topVulnerabilities(ctx context.Context) ([]vulnCount, error) {
	n := overviewRows
	out, err := h.cfg.Findings.Aggregate(ctx, findings.Aggregation{Op: "ConsoleOverview", Type: findings.AggregateTitle,
		SortBy: findings.SortByAll, SortOrder: findings.Desc, MaxResults: &n})
	if err != nil {
		return nil, err
	}
	top := make([]vulnCount, 0, len(out.Rows))
	ids := make([]string, 0, len(out.Rows))
	for _, row := range out.Rows {
		sev := "LOW"
		switch {
		case row.Counts.Critical > 0:
			sev = "CRITICAL"
		case row.Counts.High > 0:
			sev = "HIGH"
		case row.Counts.Medium > 0:
			sev = "MEDIUM"
		}
		top = append(top, vulnCount{ID: row.VulnerabilityID, URL: vulnURL(row.VulnerabilityID), Severity: sev, Images: row.Counts.All})
		ids = append(ids, row.VulnerabilityID)
	}
	if len(ids) == 0 {
		return top, nil
	}
	// The advisory's own severity, where the counts only say "below medium".
	vs, err := h.cfg.Findings.SearchVulnerabilities(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		for i := range top {
			if top[i].ID == v.ID && top[i].Severity == "LOW" && v.Severity != "" {
				top[i].Severity = findings.InspectorSeverity(v.Severity)
			}
		}
	}
	return top, nil
}

// topRepositories are the repositories with the most critical ACTIVE findings (REPOSITORY
// aggregation), those with none left out.
func (h *Handler) topRepositories(ctx context.Context) ([]repoCount, error) {
	n := overviewRows
	out, err := h.cfg.Findings.Aggregate(ctx, findings.Aggregation{Op: "ConsoleOverview", Type: findings.AggregateRepository,
		SortBy: findings.SortByCritical, SortOrder: findings.Desc, MaxResults: &n})
	if err != nil {
		return nil, err
	}
	var worst []repoCount
	for _, row := range out.Rows {
		if row.Counts.Critical > 0 {
			worst = append(worst, repoCount{Name: row.Repository, URL: repoURL(row.Repository), Critical: row.Counts.Critical, High: row.Counts.High})
		}
	}
	return worst, nil
}

// trendDays is how many days the overview's chart of opened and closed findings covers.
const trendDays = 14

type trendDay struct {
	Day            string
	Opened, Closed int
}

type trendData struct {
	Days []trendDay
	Max  int
}

// trend counts, per UTC day of the last trendDays, the findings first observed that day and
// the findings closed that day (a CLOSED finding's updatedAt is when it closed): the finding
// lifecycle as the findings service counts it, over every finding.
func (h *Handler) trend(ctx context.Context) (trendData, error) {
	today := h.cfg.Now().UTC().Truncate(24 * time.Hour)
	start := today.AddDate(0, 0, -(trendDays - 1))
	days, err := h.cfg.Findings.Trend(ctx, start, trendDays)
	if err != nil {
		return trendData{}, err
	}
	out := trendData{Days: make([]trendDay, len(days))}
	for i, d := range days {
		out.Days[i] = trendDay{Day: d.Day.Format("2006-01-02"), Opened: d.Opened, Closed: d.Closed}
		out.Max = max(out.Max, d.Opened, d.Closed)
	}
	return out, nil
}

type dbInfo struct {
	Known   bool
	Version int64
	Records int
	Newest  time.Time
	Age     string
	Problem string
}

func (h *Handler) dbInfo(ctx context.Context) dbInfo {
	if h.cfg.Advisories == nil {
		return dbInfo{Problem: "unknown"}
	}
	st, err := h.cfg.Advisories(ctx)
	if err != nil {
		h.cfg.Logger.WarnContext(ctx, "console: advisory database status", "err", err)
		return dbInfo{Problem: "the advisory database status could not be read"}
	}
	now := h.cfg.Now()
	info := dbInfo{Known: true, Version: st.Version, Records: st.Records, Newest: st.Newest()}
	if !info.Newest.IsZero() {
		info.Age = age(now.Sub(info.Newest))
	}
	if err := st.CheckFresh(now, h.cfg.MaxDBAge); err != nil {
		info.Problem = err.Error()
	}
	return info
}

// age says a duration as people read an age: "3 days", "5 hours", "12 minutes".
func age(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case d >= 2*time.Hour:
		return plural(int(d/time.Hour), "hour")
	}
	return plural(max(0, int(d/time.Minute)), "minute")
}

// ---- Repositories ----

type repoRow struct {
	Name, URL, Frequency string
	Images               int
	LastPush             time.Time
	Critical, High       int
	listed, countsKnown  bool
	images               []store.Manifest // read once for both the listing and the counts
	imagesRead           bool
}

// rowImages lists a row's images once.
func (h *Handler) rowImages(ctx context.Context, row *repoRow) ([]store.Manifest, error) {
	if !row.imagesRead {
		imgs, err := h.allImages(ctx, row.Name)
		if err != nil {
			return nil, err
		}
		row.images, row.imagesRead = imgs, true
	}
	return row.images, nil
}

var repoColumns = []string{"name", "images", "pushed", "frequency", "critical", "high"}

func (h *Handler) repositories(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	if err := h.cfg.Authz.AuthorizeList(ctx, s.Principal, "ecr:DescribeRepositories"); err != nil {
		h.fail(w, r, s, err)
		return
	}
	lq := parseListQuery(r.URL.Query(), repoColumns)
	repos, err := h.allRepositories(ctx, strings.ToLower(lq.Filter))
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	pol, err := h.cfg.Store.ScanningPolicy(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	var rows []*repoRow
	for _, repo := range repos {
		rows = append(rows, &repoRow{Name: repo.Name, URL: repoURL(repo.Name),
			Frequency: frequencyLabel(policy.Evaluate(pol, repo.Name, repo.ScanOnPush).Frequency)})
	}
	// Image counts and push times need every image listed: for all rows only when sorting by
	// them, else for the page shown.
	if lq.Sort == "images" || lq.Sort == "pushed" {
		for _, row := range rows {
			if err := h.listRepo(ctx, row); err != nil {
				h.fail(w, r, s, err)
				return
			}
		}
	}
	// Counting findings needs every image's scan: done for all rows only when sorting by it,
	// in one query when the scanning service counts per repository.
	if lq.Sort == "critical" || lq.Sort == "high" {
		counts, ok, err := h.cfg.Scans.RepositoryCounts(ctx)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		for _, row := range rows {
			if ok {
				row.Critical, row.High, row.countsKnown = counts[row.Name]["CRITICAL"], counts[row.Name]["HIGH"], true
				continue
			}
			if err := h.countRepo(ctx, row); err != nil {
				h.fail(w, r, s, err)
				return
			}
		}
	}
	slices.SortStableFunc(rows, func(a, b *repoRow) int {
		var c int
		switch lq.Sort {
		case "images":
			c = cmp.Compare(a.Images, b.Images)
		case "pushed":
			c = a.LastPush.Compare(b.LastPush)
		case "frequency":
			c = strings.Compare(a.Frequency, b.Frequency)
		case "critical":
			c = cmp.Compare(a.Critical, b.Critical)
		case "high":
			c = cmp.Compare(a.High, b.High)
		}
		c = cmp.Or(c, strings.Compare(a.Name, b.Name))
		if lq.Desc {
			return -c
		}
		return c
	})
	from, to := lq.window(len(rows))
	shown := rows[from:to]
	for _, row := range shown {
		if err := h.listRepo(ctx, row); err != nil {
			h.fail(w, r, s, err)
			return
		}
		if err := h.countRepo(ctx, row); err != nil {
			h.fail(w, r, s, err)
			return
		}
	}
	h.render(w, r, s, http.StatusOK, "repositories", "repositories", map[string]any{
		"Title": "Repositories", "Rows": shown, "Query": lq, "Total": len(rows),
		"Headers": h.sortHeaders(Prefix+"repositories", lq, repoColumns, []string{"Repository", "Images", "Last push", "Scan frequency", "Critical", "High"}),
		"Pages":   pages(Prefix+"repositories", nil, lq, len(rows)),
	})
}

// listRepo fills a row's image count and last push.
func (h *Handler) listRepo(ctx context.Context, row *repoRow) error {
	if row.listed {
		return nil
	}
	imgs, err := h.rowImages(ctx, row)
	if err != nil {
		return err
	}
	row.Images = len(imgs)
	for _, m := range imgs {
		if m.PushedAt.After(row.LastPush) {
			row.LastPush = m.PushedAt
		}
	}
	row.listed = true
	return nil
}

// countRepo fills a row's critical and high counts from its images' current scans.
func (h *Handler) countRepo(ctx context.Context, row *repoRow) error {
	if row.countsKnown {
		return nil
	}
	imgs, err := h.rowImages(ctx, row)
	if err != nil {
		return err
	}
	digests := make([]string, len(imgs))
	for i, m := range imgs {
		digests[i] = m.Digest
	}
	sums, err := h.cfg.Scans.Summaries(ctx, row.Name, digests)
	if err != nil {
		return err
	}
	for _, s := range sums {
		row.Critical += s.Counts["CRITICAL"]
		row.High += s.Counts["HIGH"]
	}
	row.countsKnown = true
	return nil
}

type sortHeader struct {
	Label, URL, Sort string // Sort: "ascending", "descending" or "" (aria-sort)
}

func (h *Handler) sortHeaders(base string, lq listQuery, columns, labels []string) []sortHeader {
	out := make([]sortHeader, len(columns))
	for i, c := range columns {
		next := lq
		next.Sort, next.Desc = c, false
		hd := sortHeader{Label: labels[i]}
		if lq.Sort == c {
			hd.Sort = "ascending"
			if lq.Desc {
				hd.Sort = "descending"
			}
			next.Desc = !lq.Desc
		}
		hd.URL = base + "?" + next.values(1).Encode()
		out[i] = hd
	}
	return out
}

type pageLink struct {
	Number  int
	URL     string
	Current bool
}

// pages links the pages of a table of n rows at path; fixed are query parameters every link
// keeps (the repository of an image list).
func pages(path string, fixed url.Values, lq listQuery, n int) []pageLink {
	count := (n + pageSize - 1) / pageSize
	if count <= 1 {
		return nil
	}
	var out []pageLink
	for p := 1; p <= count; p++ {
		v := lq.values(p)
		for k, vs := range fixed {
			v[k] = vs
		}
		out = append(out, pageLink{Number: p, URL: path + "?" + v.Encode(), Current: p == lq.Page})
	}
	return out
}

// ---- Repository ----

type imageRow struct {
	Digest, URL, Platform, Status, StatusDesc string
	Tags                                      []string
	PushedAt                                  time.Time
	Size                                      int64
	Counts                                    []sevCount
	Scannable, Pending                        bool
}

// notices are the messages a redirect may ask a page to show, by code: never text from the
// query string.
var notices = map[string]string{
	"scan-started": "Scan started.",
	"quota":        "This image was scanned less than 24 hours ago: basic scanning scans an image once a day (the push scan counts).",
	"unsupported":  "This image's operating system is not supported by basic scanning.",
	"enhanced":     "Manual scans are not supported under enhanced scanning: enhanced scanning keeps images current on its own.",
	"not-image":    "This is an index or an artifact, not an image: scan each platform's image.",
	"saved":        "Scanning configuration saved.",
	"key-deleted":  "Access key deleted.",
	"rescan-saved": "Rescan configuration saved: images out of the new window leave continuous coverage.",
	"rule-created": "Suppression rule created: the findings it matches are suppressed.",
	"rule-saved":   "Suppression rule saved and applied again.",
	"rule-deleted": "Suppression rule deleted: the findings only it suppressed are active again.",
}

func (h *Handler) repository(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	name := r.URL.Query().Get("name")
	if name == "" || len(name) > 256 {
		h.fail(w, r, s, errNotFound)
		return
	}
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "ecr:DescribeImages", h.cfg.Authz.RepositoryARN(name)); err != nil {
		h.fail(w, r, s, err)
		return
	}
	repo, err := h.cfg.Store.GetRepository(ctx, name)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	pol, err := h.cfg.Store.ScanningPolicy(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	imgs, err := h.allImages(ctx, name)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	// Newest first, filtered by tag or digest, a page at a time: only the page's scans are read.
	lq := parseListQuery(r.URL.Query(), []string{"pushed"})
	if lq.Filter != "" {
		imgs = slices.DeleteFunc(imgs, func(m store.Manifest) bool {
			return !strings.Contains(m.Digest, lq.Filter) && !slices.ContainsFunc(m.Tags, func(t string) bool { return strings.Contains(t, lq.Filter) })
		})
	}
	slices.SortFunc(imgs, func(a, b store.Manifest) int {
		return cmp.Or(b.PushedAt.Compare(a.PushedAt), strings.Compare(a.Digest, b.Digest))
	})
	total := len(imgs)
	from, to := lq.window(total)
	imgs = imgs[from:to]
	digests := make([]string, len(imgs))
	for i, m := range imgs {
		digests[i] = m.Digest
	}
	sums, err := h.cfg.Scans.Summaries(ctx, name, digests)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	basic := pol.ScanType != policy.ScanTypeEnhanced
	rows := make([]imageRow, 0, len(imgs))
	live := false
	for _, m := range imgs {
		row := imageRow{Digest: m.Digest, URL: imageURL(name, m.Digest), Tags: m.Tags, PushedAt: m.PushedAt, Size: m.ImageSize,
			Scannable: basic && scanning.IsImage(m), Status: "NOT SCANNED"}
		if sum, ok := sums[m.Digest]; ok {
			row.Status, row.StatusDesc = sum.Scan.Status, sum.Scan.Description
			row.Counts = countsOf(sum.Counts)
			row.Platform = platformOf(sum.Scan)
			row.Pending = sum.Scan.Status == scanning.StatusInProgress || sum.Scan.Status == scanning.StatusPending
			live = live || row.Pending
		}
		rows = append(rows, row)
	}
	d := policy.Evaluate(pol, name, repo.ScanOnPush)
	h.render(w, r, s, http.StatusOK, "repository", "repositories", map[string]any{
		"Title": name, "Name": name, "Repository": repo, "URI": r.Host + "/" + name, "Frequency": frequencyLabel(d.Frequency), "ScanType": pol.ScanType,
		"Images": rows, "Live": live, "Self": r.URL.RequestURI(), "Notice": notices[r.URL.Query().Get("notice")],
		"Query": lq, "Total": total, "Pages": pages(Prefix+"repository", url.Values{"name": {name}}, lq, total),
	})
}

// platformOf is the image's platform as its scan recorded it ("linux/amd64").
func platformOf(sc store.ImageScan) string {
	var info scanning.ImageInfo
	if len(sc.ImageFacts) == 0 || json.Unmarshal(sc.ImageFacts, &info) != nil {
		return ""
	}
	switch {
	case info.Platform != "" && info.Architecture != "" && !strings.Contains(info.Platform, "/"):
		return info.Platform + "/" + info.Architecture
	case info.Platform != "":
		return info.Platform
	}
	return info.Architecture
}

func (h *Handler) startScan(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	name, dgst := r.PostForm.Get("repository"), r.PostForm.Get("digest")
	if name == "" || dgst == "" || len(name) > 256 || len(dgst) > 256 {
		h.fail(w, r, s, fmt.Errorf("%w: repository and digest are required", errBadRequest))
		return
	}
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "ecr:StartImageScan", h.cfg.Authz.RepositoryARN(name)); err != nil {
		h.fail(w, r, s, err)
		return
	}
	notice := "scan-started"
	_, err := h.cfg.Scans.StartImageScan(ctx, name, dgst)
	switch {
	case errors.Is(err, scanning.ErrQuotaExceeded):
		notice = "quota"
	case errors.Is(err, scanning.ErrUnsupportedImage):
		notice = "unsupported"
	case errors.Is(err, scanning.ErrEnhancedManualScan):
		notice = "enhanced"
	case errors.Is(err, scanning.ErrNotAnImage):
		notice = "not-image"
	case err != nil:
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, repoURL(name)+"&notice="+notice, http.StatusSeeOther)
}

// ---- Image ----

type findingRow struct {
	VulnerabilityID, URL, Severity, Package, Installed, Fixed, Path, Status, Layer string
	Score                                                                          float64
	First, Last                                                                    time.Time
}

type layerRow struct {
	Index             int
	Digest, CreatedBy string
	Size              int64
	Findings          []findingRow
}

func (h *Handler) image(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	q := r.URL.Query()
	name, dgst := q.Get("repository"), q.Get("digest")
	if name == "" || dgst == "" || len(name) > 256 || len(dgst) > 256 {
		h.fail(w, r, s, errNotFound)
		return
	}
	arn := h.cfg.Authz.RepositoryARN(name)
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "ecr:DescribeImageScanFindings", arn); err != nil {
		h.fail(w, r, s, err)
		return
	}
	m, err := h.cfg.Store.GetImage(ctx, name, dgst)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	sevFilter := oneOf(q.Get("severity"), severities...)
	statusFilter := oneOf(q.Get("status"), findingStatuses...)
	if statusFilter == "" {
		statusFilter = "ACTIVE"
	}
	var layers []scanning.Layer
	if scanning.IsImage(m) {
		if layers, err = h.cfg.Scans.ImageLayers(ctx, name, dgst); err != nil {
			h.fail(w, r, s, err)
			return
		}
	}
	scan, list, err := h.cfg.Scans.Results(ctx, name, dgst)
	scanned := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, s, err)
		return
	}
	var rows []findingRow
	for _, f := range list {
		sev, status := findings.InspectorSeverity(f.Severity), scanning.InspectorStatus(f)
		if (sevFilter != "" && sev != sevFilter) || (statusFilter != "ALL" && status != statusFilter) {
			continue
		}
		d, err := scanning.DecodeDetail(f)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		for _, p := range d.Finding.Packages {
			rows = append(rows, findingRow{VulnerabilityID: f.VulnerabilityID, URL: vulnURL(f.VulnerabilityID), Severity: sev,
				Package: p.Label(), Installed: p.InstalledVersion(), Fixed: p.FixedInVersion, Path: p.FilePath, Status: status,
				Layer: p.Layer, Score: f.Score, First: f.FirstObservedAt, Last: f.LastObservedAt})
		}
	}
	slices.SortStableFunc(rows, func(a, b findingRow) int {
		return cmp.Or(cmp.Compare(slices.Index(severities, a.Severity), slices.Index(severities, b.Severity)), cmp.Compare(b.Score, a.Score),
			strings.Compare(a.VulnerabilityID, b.VulnerabilityID))
	})
	lrows := make([]layerRow, len(layers))
	for i, l := range layers {
		lrows[i] = layerRow{Index: i + 1, Digest: l.Digest, CreatedBy: l.CreatedBy, Size: l.Size}
		for _, f := range rows {
			if f.Layer == l.Digest {
				lrows[i].Findings = append(lrows[i].Findings, f)
			}
		}
	}
	refs, err := h.cfg.Store.Referrers(ctx, name, dgst)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	var sboms []Link
	if h.cfg.SBOMs != nil && scanned && scan.InventoryID != 0 {
		for _, f := range sbomFormats {
			sboms = append(sboms, Link{Label: f.Label, URL: Prefix + "image/sbom?" + url.Values{"repository": {name}, "digest": {dgst}, "format": {f.Name}}.Encode()})
		}
	}
	filters := map[string]any{"Severity": sevFilter, "Status": statusFilter, "Severities": severities, "Statuses": findingStatuses}
	h.render(w, r, s, http.StatusOK, "image", "repositories", map[string]any{
		"Title": name + "@" + shortDigest(dgst), "Repository": name, "RepoURL": repoURL(name), "Image": m, "Scanned": scanned,
		"Scan": scan, "Platform": platformOf(scan), "Layers": lrows, "Findings": rows, "Filters": filters, "Referrers": refs, "SBOMs": sboms,
		"Live": scan.Status == scanning.StatusInProgress || scan.Status == scanning.StatusPending, "Self": r.URL.RequestURI(),
	})
}

// findingStatuses are the image page's status filter: Inspector's statuses (an ACTIVE
// finding a suppression rule matches is SUPPRESSED), and every one.
var findingStatuses = []string{scanning.FindingActive, scanning.FindingSuppressed, scanning.FindingClosed, "ALL"}

// sbomFormats are the SBOM formats an image's page offers, as SBOM exports name them.
var sbomFormats = []struct{ Name, Label, File string }{
	{"CYCLONEDX_1_4", "CycloneDX 1.4 (JSON)", "cdx.json"},
	{"SPDX_2_3", "SPDX 2.3 (JSON)", "spdx.json"},
}

// imageSBOM serves an image's SBOM to a key that may read its findings: the document an SBOM
// export writes for it, as a download.
func (h *Handler) imageSBOM(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	q := r.URL.Query()
	name, dgst, format := q.Get("repository"), q.Get("digest"), q.Get("format")
	i := slices.IndexFunc(sbomFormats, func(f struct{ Name, Label, File string }) bool { return f.Name == format })
	if h.cfg.SBOMs == nil || name == "" || dgst == "" || len(name) > 256 || len(dgst) > 256 || i < 0 {
		h.fail(w, r, s, errNotFound)
		return
	}
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "ecr:DescribeImageScanFindings", h.cfg.Authz.RepositoryARN(name)); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if _, err := h.cfg.Store.GetImage(ctx, name, dgst); err != nil {
		h.fail(w, r, s, err)
		return
	}
	var doc bytes.Buffer
	if err := h.cfg.SBOMs.ImageSBOM(ctx, name, dgst, format, &doc); errors.Is(err, sbom.ErrNoInventory) {
		h.fail(w, r, s, errNotFound)
		return
	} else if err != nil {
		h.fail(w, r, s, err)
		return
	}
	file := strings.NewReplacer("/", "_", ":", "_").Replace(name+"@"+dgst) + "." + sbomFormats[i].File
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": file}))
	_, _ = w.Write(doc.Bytes())
}

// ---- Vulnerability ----

// exposuresPageSize is how many findings the vulnerability page lists at once.
const exposuresPageSize = 50

type exposureRow struct {
	Repository, RepoURL, Digest, ImageURL, Severity, Package, Path string
	Tags                                                           []string
}

func (h *Handler) vulnerability(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
	ctx := r.Context()
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if id == "" || len(id) > 128 {
		h.fail(w, r, s, errNotFound)
		return
	}
	if err := h.cfg.Authz.Authorize(ctx, s.Principal, "inspector2:ListFindings", "*"); err != nil {
		h.fail(w, r, s, err)
		return
	}
	vs, err := h.cfg.Findings.SearchVulnerabilities(ctx, []string{id})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	// Where it is active: a page of its ACTIVE findings (ListFindings' order: repository,
	// image), and how many images in all (TITLE aggregation).
	size := exposuresPageSize
	in := findings.ListInput{Op: "ConsoleVulnerability", MaxResults: &size, Criteria: findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{
		findings.VulnerabilityID: {{Comparison: findings.Equals, Value: id}},
		findings.FindingStatus:   {{Comparison: findings.Equals, Value: scanning.FindingActive}}}}}
	token := r.URL.Query().Get("token")
	if token != "" && len(token) <= 4096 {
		in.NextToken = &token
	}
	page, err := h.cfg.Findings.List(ctx, in)
	var invalid *findings.ValidationError
	if errors.As(err, &invalid) && in.NextToken != nil {
		in.NextToken, token = nil, "" // a token not issued for this listing: the first page
		page, err = h.cfg.Findings.List(ctx, in)
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	active := page.Findings
	agg, err := h.cfg.Findings.Aggregate(ctx, findings.Aggregation{Op: "ConsoleVulnerability", Type: findings.AggregateTitle,
		Strings: map[string][]findings.StringFilter{"vulnerabilityIds": {{Comparison: findings.Equals, Value: id}}}})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	var images int64
	for _, row := range agg.Rows {
		images += row.Counts.All
	}
	if len(vs) == 0 && len(active) == 0 {
		h.fail(w, r, s, errNotFound)
		return
	}
	var v *findings.Vulnerability
	if len(vs) > 0 {
		v = &vs[0]
	}
	var rows []exposureRow
	repos := map[string]bool{}
	var repoList []Link
	description := ""
	for _, l := range active {
		f := l.Finding
		d, err := scanning.DecodeDetail(f)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		if description == "" {
			description = d.Finding.Description
		}
		for _, p := range d.Finding.Packages {
			rows = append(rows, exposureRow{Repository: f.Repository, RepoURL: repoURL(f.Repository), Digest: f.Digest,
				ImageURL: imageURL(f.Repository, f.Digest), Severity: findings.InspectorSeverity(f.Severity), Package: p.Label() + " " + p.InstalledVersion(),
				Path: p.FilePath, Tags: l.Manifest.Tags})
		}
		if !repos[f.Repository] {
			repos[f.Repository] = true
			repoList = append(repoList, Link{Label: f.Repository, URL: repoURL(f.Repository)})
		}
	}
	if v != nil && v.Description != "" {
		description = v.Description
	}
	data := map[string]any{"Title": id, "ID": id, "Vuln": v, "Description": description, "Exposures": rows, "Repositories": repoList, "Images": images}
	if token != "" {
		data["First"] = vulnURL(id)
	}
	if page.NextToken != "" {
		data["Next"] = vulnURL(id) + "&" + url.Values{"token": {page.NextToken}}.Encode()
	}
	h.render(w, r, s, http.StatusOK, "vulnerability", "overview", data)
}
