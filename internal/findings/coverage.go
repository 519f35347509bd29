package findings

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lading-registry/lading/internal/scanning/policy"
)

// Coverage answers which resources of the registry Inspector's ECR scanning covers, and how
// (ListCoverage, ListCoverageStatistics): one AWS_ECR_REPOSITORY resource per repository and
// one AWS_ECR_CONTAINER_IMAGE per image (manifest lists and artifacts are not scanned, so not
// listed). Each resource's scan status is derived here from the registry scanning
// configuration, the rescan window and the image's scan (coverageStatus).
type Coverage struct {
	store   CoverageStore
	rescan  RescanSource
	account string
	region  string
	now     func() time.Time
}

// CoverageStore is what Coverage needs from the metadata store.
type CoverageStore interface {
	ScanningPolicy(ctx context.Context) (policy.Policy, error)
	// CoverageRows returns repositories and images in (repository, digest) order (a
	// repository, digest "", before its images), after the key given, at most limit; only
	// those of the repositories named, when any are.
	CoverageRows(ctx context.Context, repos []string, afterRepo, afterDigest string, limit int) ([]CoverageRow, error)
	// CoverageCounts counts the images by repository and scan state, and whether the rescan
	// window covers them (see CoverageCountQuery), and lists every repository: what
	// coverageStatus needs of them, without reading them one by one.
	CoverageCounts(ctx context.Context, q CoverageCountQuery) (CoverageCounts, error)
}

// CoverageCountQuery parameterizes CoverageCounts: an image is covered by the window when
// pushed at or after PushedSince (zero: every image) or last pulled at or after PulledSince;
// a scan's description is classed by whether it starts with FailurePrefix.
type CoverageCountQuery struct {
	PushedSince, PulledSince time.Time
	FailurePrefix            string
}

// CoverageCounts are the store's counts for coverage: every repository (as CoverageRows lists
// it, without LastScannedAt), and the images grouped.
type CoverageCounts struct {
	Repositories []CoverageRow
	Images       []CoverageGroup
}

// CoverageGroup is a count of a repository's images in one scan state, covered by the window
// or not.
type CoverageGroup struct {
	Repository string
	// Scan: nil for images without an ENHANCED scan; else its Status, NoPackages, and
	// Description the query's FailurePrefix when the scan's starts with it, else "".
	Scan    *CoverageScan
	Covered bool
	Images  int64
}

// RescanSource gives the rescan window in force (internal/scanning).
type RescanSource interface {
	Rescan(ctx context.Context) (policy.Rescan, policy.Window, error)
}

// NewCoverage returns the coverage queries over a store.
func NewCoverage(st CoverageStore, rescan RescanSource, account, region string) *Coverage {
	return &Coverage{store: st, rescan: rescan, account: account, region: region, now: time.Now}
}

// CoverageRow is a repository (Digest "") or an image, as the store lists it.
type CoverageRow struct {
	Repository, Digest string
	// ScanOnPush is the repository's own flag.
	ScanOnPush             bool
	Tags                   []string
	PushedAt, LastPulledAt time.Time // LastPulledAt zero: never pulled
	// LastScannedAt is the image's last scan (or re-evaluation), a repository's latest of its
	// images'; zero when none.
	LastScannedAt time.Time
	// Scan is the image's ENHANCED scan; nil when it has none.
	Scan *CoverageScan
}

// CoverageScan is what coverage reads of an image's ENHANCED scan.
type CoverageScan struct {
	Status, Description string
	// NoPackages: the scan's inventory found no operating system and no package.
	NoPackages           bool
	NotEvaluatedPackages int
}

// Resource types and scan statuses of coverage, as Inspector names them.
const (
	ResourceRepository = "AWS_ECR_REPOSITORY"
	ResourceImage      = "AWS_ECR_CONTAINER_IMAGE"
	StatusCodeActive   = "ACTIVE"
	StatusCodeInactive = "INACTIVE"
)

// Scan status reasons that apply to the registry's resources.
const (
	ReasonSuccessful         = "SUCCESSFUL"
	ReasonPendingInitialScan = "PENDING_INITIAL_SCAN"
	ReasonManual             = "SCAN_FREQUENCY_MANUAL"
	ReasonScanOnPush         = "SCAN_FREQUENCY_SCAN_ON_PUSH"
	ReasonUnsupportedOS      = "UNSUPPORTED_OS"
	ReasonUnsupportedMedia   = "UNSUPPORTED_MEDIA_TYPE"
	ReasonExpired            = "SCAN_ELIGIBILITY_EXPIRED"
	ReasonInternalError      = "INTERNAL_ERROR"
	ReasonPendingDisable     = "PENDING_DISABLE"
)

// unsupportedMediaPrefix starts the description of a scan that failed on an image Lading
// cannot read.
const unsupportedMediaPrefix = "UnsupportedImageError"

// CoveredResource is a resource with its coverage.
type CoveredResource struct {
	Row                     CoverageRow
	ResourceType            string
	ResourceID              string
	StatusCode, Reason      string
	RepositoryScanFrequency string
}

// coverageStatus is a resource's scan status under the configuration pol and the window w.
// A repository is ACTIVE unless its scan frequency is MANUAL. An image:
//   - in a MANUAL repository (no rule scans it): INACTIVE, SCAN_FREQUENCY_MANUAL;
//   - its scan pending or running: ACTIVE, PENDING_INITIAL_SCAN; failed: INACTIVE,
//     UNSUPPORTED_MEDIA_TYPE for an image Lading cannot read, else INTERNAL_ERROR;
//   - no operating system and no package found: INACTIVE, UNSUPPORTED_OS;
//   - expired (the sweep closed its findings) or out of the window: INACTIVE,
//     SCAN_ELIGIBILITY_EXPIRED;
//   - in a SCAN_ON_PUSH repository: INACTIVE, SCAN_FREQUENCY_SCAN_ON_PUSH (scanned once, never
//     re-evaluated);
//   - else ACTIVE, SUCCESSFUL; without a scan yet, ACTIVE, PENDING_INITIAL_SCAN.
func coverageStatus(pol policy.Policy, w policy.Window, now time.Time, r CoverageRow) (code, reason, frequency string) {
	frequency = policy.Evaluate(pol, r.Repository, r.ScanOnPush).Frequency
	inactive := func(reason string) (string, string, string) { return StatusCodeInactive, reason, frequency }
	if frequency == policy.FrequencyManual {
		return inactive(ReasonManual)
	}
	if r.Digest == "" {
		return StatusCodeActive, ReasonSuccessful, frequency
	}
	s := r.Scan
	switch {
	case s != nil && (s.Status == "PENDING" || s.Status == "IN_PROGRESS"):
		return StatusCodeActive, ReasonPendingInitialScan, frequency
	case s != nil && s.Status == "FINDINGS_UNAVAILABLE":
		// Scanned before enhanced scanning was last disabled: enabling it queues the scan again.
		return StatusCodeActive, ReasonPendingInitialScan, frequency
	case s != nil && s.Status == "FAILED":
		if strings.HasPrefix(s.Description, unsupportedMediaPrefix) {
			return inactive(ReasonUnsupportedMedia)
		}
		return inactive(ReasonInternalError)
	case s != nil && (s.Status == "UNSUPPORTED_IMAGE" || s.NoPackages):
		return inactive(ReasonUnsupportedOS)
	case s != nil && s.Status == ReasonExpired:
		return inactive(ReasonExpired)
	case frequency == policy.FrequencyScanOnPush:
		return inactive(ReasonScanOnPush)
	case !w.Covers(r.PushedAt, r.LastPulledAt, now):
		return inactive(ReasonExpired)
	case s == nil:
		return StatusCodeActive, ReasonPendingInitialScan, frequency
	}
	return StatusCodeActive, ReasonSuccessful, frequency
}

// Coverage criteria, as CoverageFilterCriteria names them.
const (
	CovAccountID        Field = "accountId"
	CovResourceID       Field = "resourceId"
	CovResourceType     Field = "resourceType"
	CovScanStatusCode   Field = "scanStatusCode"
	CovScanStatusReason Field = "scanStatusReason"
	CovScanType         Field = "scanType"
	CovRepositoryName   Field = "ecrRepositoryName"
	CovImageTags        Field = "ecrImageTags"
	CovLastScannedAt    Field = "lastScannedAt"
	CovImagePulledAt    Field = "imagePulledAt"
	CovLastInUseAt      Field = "ecrImageLastInUseAt"
	CovInUseCount       Field = "ecrImageInUseCount"
)

// CoverageKindOf returns the kind of a member of CoverageFilterCriteria, false for a name the
// model does not have. Members about EC2, Lambda and code repositories have no value for the
// registry's resources.
func CoverageKindOf(f Field) (Kind, bool) {
	switch f {
	case CovAccountID, CovResourceID, CovResourceType, CovScanStatusCode, CovScanStatusReason, CovScanType, CovRepositoryName, CovImageTags,
		"codeRepositoryProjectName", "codeRepositoryProviderType", "codeRepositoryProviderTypeVisibility", "lambdaFunctionName",
		"lambdaFunctionRuntime", "lastScannedCommitId", "scanMode":
		return KindString, true
	case CovLastScannedAt, CovImagePulledAt, CovLastInUseAt:
		return KindDate, true
	case CovInUseCount:
		return KindNumber, true
	case "ec2InstanceTags", "lambdaFunctionTags":
		return KindMap, true
	}
	return 0, false
}

// CoverageCriteria filter coverage: within a member a resource matches one of its EQUALS
// filters (if any) and none of its NOT_EQUALS ones; members are AND'd.
type CoverageCriteria struct {
	Strings map[Field][]StringFilter
	Dates   map[Field][]DateFilter
	Numbers map[Field][]NumberFilter
	Maps    map[Field][]MapFilter
}

// ValidateCoverage checks coverage criteria against the model's rules (no PREFIX: coverage's
// string filters compare EQUALS or NOT_EQUALS).
func ValidateCoverage(prefix string, c CoverageCriteria) error {
	v := &validation{}
	count := func(f Field, want Kind, n int) {
		p := prefix + "." + string(f)
		if k, ok := CoverageKindOf(f); !ok {
			v.add(p, "is not a member of CoverageFilterCriteria")
		} else if k != want {
			v.add(p, "has filters of the wrong type")
		}
		if n < 1 || n > MaxFiltersPerCriterion {
			v.add(p, fmt.Sprintf("must have between 1 and %d filters", MaxFiltersPerCriterion))
		}
	}
	for f, list := range c.Strings {
		count(f, KindString, len(list))
		for i, sf := range list {
			p := fmt.Sprintf("%s.%s[%d]", prefix, f, i)
			if sf.Comparison != Equals && sf.Comparison != NotEquals {
				v.add(p+".comparison", fmt.Sprintf("Value '%s' is not one of [EQUALS NOT_EQUALS]", sf.Comparison))
			}
			if n := utf8.RuneCountInString(sf.Value); n < 1 || n > MaxStringValue {
				v.add(p+".value", fmt.Sprintf("length must be between 1 and %d", MaxStringValue))
			}
		}
	}
	for f, list := range c.Dates {
		count(f, KindDate, len(list))
		for i, df := range list {
			if df.Start != nil && df.End != nil && df.End.Before(*df.Start) {
				v.add(fmt.Sprintf("%s.%s[%d]", prefix, f, i), "endInclusive is before startInclusive")
			}
		}
	}
	for f, list := range c.Numbers {
		count(f, KindNumber, len(list))
	}
	for f, list := range c.Maps {
		count(f, KindMap, len(list))
		for i, mf := range list {
			if mf.Comparison != Equals {
				v.add(fmt.Sprintf("%s.%s[%d].comparison", prefix, f, i), fmt.Sprintf("Value '%s' is not one of [EQUALS]", mf.Comparison))
			}
		}
	}
	return v.err()
}

// matches applies the criteria to a resource.
func (c CoverageCriteria) matches(r CoveredResource, account string) bool {
	for f, list := range c.Strings {
		var values []string
		switch f {
		case CovAccountID:
			values = []string{account}
		case CovResourceID:
			values = []string{r.ResourceID}
		case CovResourceType:
			values = []string{r.ResourceType}
		case CovScanStatusCode:
			values = []string{r.StatusCode}
		case CovScanStatusReason:
			values = []string{r.Reason}
		case CovScanType:
			values = []string{"PACKAGE"}
		case CovRepositoryName:
			values = []string{r.Row.Repository}
		case CovImageTags:
			values = r.Row.Tags
		}
		if !matchValues(values, list) {
			return false
		}
	}
	for f, list := range c.Dates {
		var t time.Time
		switch f {
		case CovLastScannedAt:
			t = r.Row.LastScannedAt
		case CovImagePulledAt, CovLastInUseAt:
			if r.Row.Digest != "" {
				t = r.Row.LastPulledAt
			}
		}
		if !slices.ContainsFunc(list, func(df DateFilter) bool {
			return !t.IsZero() && (df.Start == nil || !t.Before(*df.Start)) && (df.End == nil || !t.After(*df.End))
		}) {
			return false
		}
	}
	// No resource of the registry has an in-use count or EC2/Lambda tags: ranges and tag
	// filters match nothing.
	for _, list := range c.Numbers {
		if len(list) > 0 {
			return false
		}
	}
	for _, list := range c.Maps {
		if len(list) > 0 {
			return false
		}
	}
	return true
}

// matchValues: one value equals an EQUALS filter (if there are any), none equals a NOT_EQUALS
// one. A resource without a value matches only NOT_EQUALS filters.
func matchValues(values []string, list []StringFilter) bool {
	anyPos, posOK := false, false
	for _, sf := range list {
		has := slices.Contains(values, sf.Value)
		if sf.Comparison == NotEquals {
			if has {
				return false
			}
			continue
		}
		anyPos = true
		posOK = posOK || has
	}
	return !anyPos || posOK
}

// CoverageInput is a ListCoverage request.
type CoverageInput struct {
	Op         string
	Criteria   CoverageCriteria
	MaxResults *int
	NextToken  *string
}

// CoverageOutput is a page of resources.
type CoverageOutput struct {
	Resources []CoveredResource
	NextToken string
}

// Coverage page sizes (the model's bounds of ListCoverage's maxResults).
const (
	MaxCoveragePageSize     = 200
	DefaultCoveragePageSize = 100
	coverageBatch           = 500
)

// List returns a page of covered resources, in (repository, image digest) order. Under BASIC
// scanning Inspector's ECR scanning is off: no resource is covered.
func (c *Coverage) List(ctx context.Context, in CoverageInput) (CoverageOutput, error) {
	var out CoverageOutput
	if err := ValidateCoverage("filterCriteria", in.Criteria); err != nil {
		return out, err
	}
	limit := DefaultCoveragePageSize
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > MaxCoveragePageSize {
			return out, Invalid(ReasonFieldValidationFailed, "maxResults", fmt.Sprintf("must be between 1 and %d", MaxCoveragePageSize))
		}
		limit = *in.MaxResults
	}
	hash := coverageHash(in.Criteria, "")
	var after coverageToken
	if in.NextToken != nil && *in.NextToken != "" {
		var err error
		if after, err = decodeCoverageToken(in.Op, hash, *in.NextToken); err != nil {
			return out, err
		}
	}
	more, err := c.scan(ctx, in.Criteria, after.Repository, after.Digest, limit+1, func(r CoveredResource) bool {
		out.Resources = append(out.Resources, r)
		return len(out.Resources) <= limit
	})
	if err != nil {
		return out, err
	}
	if more || len(out.Resources) > limit {
		out.Resources = out.Resources[:limit]
		last := out.Resources[limit-1].Row
		out.NextToken = encodeCoverageToken(coverageToken{Op: in.Op, Query: hash, Repository: last.Repository, Digest: last.Digest})
	}
	return out, nil
}

// scan visits the resources matching criteria after the key, in order, until visit returns
// false (scan then reports true: there may be more).
func (c *Coverage) scan(ctx context.Context, crit CoverageCriteria, afterRepo, afterDigest string, batch int, visit func(CoveredResource) bool) (bool, error) {
	pol, err := c.store.ScanningPolicy(ctx)
	if err != nil {
		return false, err
	}
	if pol.ScanType != policy.ScanTypeEnhanced {
		return false, nil
	}
	_, window, err := c.rescan.Rescan(ctx)
	if err != nil {
		return false, err
	}
	now := c.now()
	batch = max(batch, 1)
	// Repository names given by EQUALS filters alone are looked up by key instead of read
	// past; matches still applies every filter.
	var repos []string
	if list := crit.Strings[CovRepositoryName]; len(list) > 0 && !slices.ContainsFunc(list, func(sf StringFilter) bool { return sf.Comparison != Equals }) {
		for _, sf := range list {
			repos = append(repos, sf.Value)
		}
		slices.Sort(repos)
		repos = slices.Compact(repos)
	}
	// The repositories named are read a chunk at a time, in order (each chunk after the last
	// key read); pending are those left.
	const chunk = 200
	var names, pending []string
	next := func() bool {
		if len(pending) == 0 {
			return false
		}
		names = pending[:min(chunk, len(pending))]
		pending = pending[len(names):]
		return true
	}
	if repos != nil {
		i, _ := slices.BinarySearch(repos, afterRepo)
		if pending = repos[i:]; !next() {
			return false, nil
		}
	}
	// A filter on the scan status that most rows of a batch fail: the store's counts say which
	// repositories hold a resource that may match (their frequency, their images' scan states
	// and the window), and only those are read on. (A status most resources have fills its
	// pages without them.)
	narrow := crit.Strings[CovScanStatusCode] != nil || crit.Strings[CovScanStatusReason] != nil
	for {
		rows, err := c.store.CoverageRows(ctx, names, afterRepo, afterDigest, batch)
		if err != nil {
			return false, fmt.Errorf("list coverage: %w", err)
		}
		matched := 0
		for _, row := range rows {
			r := c.resource(pol, window, now, row)
			if crit.matches(r, c.account) {
				if matched++; !visit(r) {
					return true, nil
				}
			}
		}
		full := len(rows) == batch
		if full {
			afterRepo, afterDigest = rows[len(rows)-1].Repository, rows[len(rows)-1].Digest
		}
		batch = coverageBatch // filtered: read on in larger steps
		if narrow && matched*2 < len(rows) {
			narrow = false
			if repos == nil && !full {
				return false, nil // every repository read
			}
			cands, err := c.candidates(ctx, pol, window, now, crit)
			if err != nil {
				return false, err
			}
			if repos != nil {
				left := pending
				if full {
					left = append(slices.Clone(names), pending...)
				}
				cands = slices.DeleteFunc(cands, func(name string) bool { _, found := slices.BinarySearch(left, name); return !found })
			}
			i, _ := slices.BinarySearch(cands, afterRepo)
			if pending = cands[i:]; !next() {
				return false, nil
			}
			continue
		}
		if !full && !next() {
			return false, nil
		}
	}
}

// countable reports whether the criteria read only what the store's counts tell of a
// resource: not its digest, tags or dates, which differ between the images counted together.
func (c CoverageCriteria) countable() bool {
	if c.Strings[CovResourceID] != nil || c.Strings[CovImageTags] != nil {
		return false
	}
	return len(c.Dates) == 0
}

// coarse is the part of the criteria that countable allows.
func (c CoverageCriteria) coarse() CoverageCriteria {
	out := CoverageCriteria{Strings: maps.Clone(c.Strings), Numbers: c.Numbers, Maps: c.Maps}
	delete(out.Strings, CovResourceID)
	delete(out.Strings, CovImageTags)
	return out
}

// count visits the resources matching countable criteria as the store counts them: each
// repository, and a stand-in for each group of images with their number. Each goes through
// coverageStatus as an image listed by CoverageRows does.
func (c *Coverage) count(ctx context.Context, pol policy.Policy, w policy.Window, now time.Time, crit CoverageCriteria, visit func(r CoveredResource, n int64)) error {
	q := CoverageCountQuery{PulledSince: now.Add(-w.Pull), FailurePrefix: unsupportedMediaPrefix}
	if w.Push != 0 {
		q.PushedSince = now.Add(-w.Push)
	}
	counts, err := c.store.CoverageCounts(ctx, q)
	if err != nil {
		return fmt.Errorf("count coverage: %w", err)
	}
	scanOnPush := make(map[string]bool, len(counts.Repositories))
	for _, row := range counts.Repositories {
		scanOnPush[row.Repository] = row.ScanOnPush
		if r := c.resource(pol, w, now, row); crit.matches(r, c.account) {
			visit(r, 1)
		}
	}
	for _, g := range counts.Images {
		// What coverageStatus reads of the group's images: pushed now when the window covers
		// them, else long ago and never pulled (q.PushedSince is set then: w.Push != 0).
		row := CoverageRow{Repository: g.Repository, Digest: "sha256:", ScanOnPush: scanOnPush[g.Repository], Scan: g.Scan}
		if g.Covered {
			row.PushedAt = now
		}
		if r := c.resource(pol, w, now, row); crit.matches(r, c.account) {
			visit(r, g.Images)
		}
	}
	return nil
}

// candidates are the repositories, in order, where a resource may match the criteria: the
// store's counts decide the criteria's countable part.
func (c *Coverage) candidates(ctx context.Context, pol policy.Policy, w policy.Window, now time.Time, crit CoverageCriteria) ([]string, error) {
	var names []string
	err := c.count(ctx, pol, w, now, crit.coarse(), func(r CoveredResource, _ int64) {
		names = append(names, r.Row.Repository)
	})
	slices.Sort(names)
	return slices.Compact(names), err
}

func (c *Coverage) resource(pol policy.Policy, w policy.Window, now time.Time, row CoverageRow) CoveredResource {
	r := CoveredResource{Row: row, ResourceType: ResourceImage}
	r.StatusCode, r.Reason, r.RepositoryScanFrequency = coverageStatus(pol, w, now, row)
	repoARN := "arn:aws:ecr:" + c.region + ":" + c.account + ":repository/" + row.Repository
	if row.Digest == "" {
		r.ResourceType, r.ResourceID = ResourceRepository, repoARN
	} else {
		r.ResourceID = repoARN + "/" + row.Digest
	}
	return r
}

// GroupKey is what ListCoverageStatistics counts by.
type GroupKey string

// Group keys.
const (
	GroupScanStatusCode   GroupKey = "SCAN_STATUS_CODE"
	GroupScanStatusReason GroupKey = "SCAN_STATUS_REASON"
	GroupAccountID        GroupKey = "ACCOUNT_ID"
	GroupResourceType     GroupKey = "RESOURCE_TYPE"
	GroupRepositoryName   GroupKey = "ECR_REPOSITORY_NAME"
)

// GroupKeys lists the model's group keys.
func GroupKeys() []GroupKey {
	return []GroupKey{GroupScanStatusCode, GroupScanStatusReason, GroupAccountID, GroupResourceType, GroupRepositoryName}
}

// StatisticsInput is a ListCoverageStatistics request.
type StatisticsInput struct {
	Op        string
	Criteria  CoverageCriteria
	GroupBy   GroupKey // "": no groups, the total only
	NextToken *string
}

// CoverageCount is a group's count.
type CoverageCount struct {
	Key   string
	Count int64
}

// StatisticsOutput is a page of groups (at most StatisticsPageSize, as the model caps
// countsByGroup) and the count of every resource matching.
type StatisticsOutput struct {
	Groups    []CoverageCount
	Total     int64
	NextToken string
}

// StatisticsPageSize is the model's cap of countsByGroup.
const StatisticsPageSize = 5

// Statistics counts the resources matching the criteria, by group: the largest groups first,
// ties by key.
func (c *Coverage) Statistics(ctx context.Context, in StatisticsInput) (StatisticsOutput, error) {
	var out StatisticsOutput
	if err := ValidateCoverage("filterCriteria", in.Criteria); err != nil {
		return out, err
	}
	if in.GroupBy != "" && !slices.Contains(GroupKeys(), in.GroupBy) {
		return out, Invalid(ReasonFieldValidationFailed, "groupBy", fmt.Sprintf("Value '%s' is not one of %v", in.GroupBy, GroupKeys()))
	}
	hash := coverageHash(in.Criteria, in.GroupBy)
	offset := 0
	if in.NextToken != nil && *in.NextToken != "" {
		var err error
		if offset, err = decodeOffsetToken(in.Op, hash, *in.NextToken); err != nil {
			return out, err
		}
	}
	counts := map[string]int64{}
	add := func(r CoveredResource, n int64) {
		out.Total += n
		switch in.GroupBy {
		case GroupScanStatusCode:
			counts[r.StatusCode] += n
		case GroupScanStatusReason:
			counts[r.Reason] += n
		case GroupAccountID:
			counts[c.account] += n
		case GroupResourceType:
			counts[r.ResourceType] += n
		case GroupRepositoryName:
			counts[r.Row.Repository] += n
		}
	}
	var err error
	if in.Criteria.countable() {
		err = c.counted(ctx, in.Criteria, add)
	} else {
		_, err = c.scan(ctx, in.Criteria, "", "", coverageBatch, func(r CoveredResource) bool { add(r, 1); return true })
	}
	if err != nil {
		return out, err
	}
	groups := make([]CoverageCount, 0, len(counts))
	for k, n := range counts {
		groups = append(groups, CoverageCount{Key: k, Count: n})
	}
	slices.SortFunc(groups, func(a, b CoverageCount) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Key, b.Key)
	})
	if offset < len(groups) {
		out.Groups = groups[offset:min(offset+StatisticsPageSize, len(groups))]
	}
	if offset+StatisticsPageSize < len(groups) {
		out.NextToken = encodeOffsetToken(in.Op, hash, offset+StatisticsPageSize)
	}
	return out, nil
}

// counted is count under the configuration in force: nothing is covered under BASIC scanning.
func (c *Coverage) counted(ctx context.Context, crit CoverageCriteria, visit func(CoveredResource, int64)) error {
	pol, err := c.store.ScanningPolicy(ctx)
	if err != nil {
		return err
	}
	if pol.ScanType != policy.ScanTypeEnhanced {
		return nil
	}
	_, window, err := c.rescan.Rescan(ctx)
	if err != nil {
		return err
	}
	return c.count(ctx, pol, window, c.now(), crit, visit)
}

// coverageHash identifies coverage criteria (and a grouping).
func coverageHash(c CoverageCriteria, g GroupKey) string {
	return aggregationHash(AggregationQuery{Type: AggregationType("coverage:" + string(g)), Criteria: Criteria{Strings: c.Strings, Dates: c.Dates,
		Numbers: c.Numbers, Maps: c.Maps}})
}

// coverageToken is ListCoverage's nextToken: the key of the page's last resource, bound to
// the operation and the criteria.
type coverageToken struct {
	Op         string `json:"o"`
	Query      string `json:"q"`
	Repository string `json:"r"`
	Digest     string `json:"d"`
}

func encodeCoverageToken(t coverageToken) string {
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // plain strings always marshal
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCoverageToken(op, query, token string) (coverageToken, error) {
	bad := func(why string) error { return Invalid(ReasonFieldValidationFailed, "nextToken", why) }
	var t coverageToken
	if len(token) > maxTokenLen {
		return t, bad("the token is not one this listing issued")
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Op == "" || t.Repository == "" {
		return coverageToken{}, bad("the token is not one this listing issued")
	}
	if t.Op != op {
		return coverageToken{}, bad(fmt.Sprintf("the token was issued by %s, not %s", t.Op, op))
	}
	if t.Query != query {
		return coverageToken{}, bad("the token was issued for other filter criteria")
	}
	return t, nil
}
