// Package storetest is the conformance suite of Lading's metadata store engines: every engine
// (store/sqlite, store/postgres) runs Run against fresh stores of its own and must pass every
// case, so that the faces and workers above the store interfaces see one behaviour whichever
// engine holds the metadata.
package storetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/lease"
	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
	"github.com/lading-registry/lading/internal/vulndb"
)

// Store is what the suite exercises: the registry core, access keys and settings, resource
// policies, lifecycle policies, pull-gate overrides, garbage collection's queries, the outbox
// and webhook cursors, the effects of a change, scan jobs, image scan states, inventories,
// report jobs and coverage, and the advisory database.
type Store interface {
	SetClock(now func() time.Time)
	vulndb.Store
	lease.Store

	CreateRepository(ctx context.Context, r store.Repository) (store.Repository, error)
	GetRepository(ctx context.Context, name string) (store.Repository, error)
	ListRepositories(ctx context.Context, after string, limit int) ([]store.Repository, error)
	DeleteRepository(ctx context.Context, name string, force bool) (store.Repository, error)
	UpdateRepository(ctx context.Context, name string, fn func(*store.Repository) error) (store.Repository, error)
	TagRepository(ctx context.Context, name string, tags map[string]string) error
	UntagRepository(ctx context.Context, name string, keys []string) error
	ResourceTags(ctx context.Context, name string) (map[string]string, error)
	RepositoryExists(ctx context.Context, name string) (bool, error)

	LinkBlob(ctx context.Context, repo, digest string, size int64, create bool) error
	BlobSize(ctx context.Context, repo, digest string) (int64, error)
	AnyBlobSize(ctx context.Context, digest string) (int64, error)
	CheckBlob(ctx context.Context, repo, digest string) (int64, error)
	MountBlob(ctx context.Context, repo, from, digest string, create bool) (int64, error)
	UnlinkBlob(ctx context.Context, repo, digest string) error
	BlobLinked(ctx context.Context, digest string) (bool, error)
	BlobRepositories(ctx context.Context, digest string, limit int) ([]string, error)

	CreateUpload(ctx context.Context, id, repo string, create bool) error
	UploadRepository(ctx context.Context, id string) (string, error)
	TouchUpload(ctx context.Context, id string) error
	DeleteUpload(ctx context.Context, id string) error
	DeleteUploadsBefore(ctx context.Context, t time.Time) ([]string, error)
	UploadSessions(ctx context.Context) (map[string]time.Time, error)
	DeleteUploadIfIdle(ctx context.Context, id string, cutoff time.Time) (bool, error)

	PutManifest(ctx context.Context, m store.Manifest, refs []store.Reference, tags []string, opts store.PutOptions) (store.PutManifestResult, error)
	GetManifest(ctx context.Context, repo, digest string) (store.Manifest, error)
	ResolveTag(ctx context.Context, repo, tag string) (string, error)
	MarkPulled(ctx context.Context, m store.Manifest, at time.Time) error
	DeleteManifest(ctx context.Context, repo, digest string, allowReferenced bool) (store.Manifest, error)
	DeleteTag(ctx context.Context, repo, tag string) (string, error)
	ListTags(ctx context.Context, repo, after string, limit int) ([]string, error)
	TagsOf(ctx context.Context, repo, digest string) ([]string, error)
	Referrers(ctx context.Context, repo, digest string) ([]store.Descriptor, error)

	ListImageIDs(ctx context.Context, repo, tagStatus, afterDigest, afterTag string, limit int) ([]store.ImageID, error)
	ListImages(ctx context.Context, repo, tagStatus, afterDigest string, limit int) ([]store.Manifest, error)
	GetImage(ctx context.Context, repo, digest string) (store.Manifest, error)
	UntagImage(ctx context.Context, repo, tag string) (store.Manifest, bool, error)
	ReferencingManifest(ctx context.Context, repo, digest string) (store.Manifest, error)

	PruneBlobLinks(ctx context.Context, cutoff time.Time, dryRun bool) ([]store.BlobLink, error)
	BlobsInUse(ctx context.Context, linksPrunedBefore time.Time) (map[string]bool, error)
	BlobInUse(ctx context.Context, digest string) (bool, error)

	PutLifecyclePolicy(ctx context.Context, repo, text string) error
	LifecyclePolicy(ctx context.Context, repo string) (store.LifecyclePolicy, error)
	DeleteLifecyclePolicy(ctx context.Context, repo string) (store.LifecyclePolicy, error)
	LifecyclePolicies(ctx context.Context) ([]store.LifecyclePolicy, error)
	MarkLifecycleEvaluated(ctx context.Context, repo, text string, at time.Time) error
	PutLifecyclePreview(ctx context.Context, p store.LifecyclePreview) error
	LifecyclePreview(ctx context.Context, repo string) (store.LifecyclePreview, error)
	LifecycleImages(ctx context.Context, repo string) ([]store.Manifest, error)
	ExpireImage(ctx context.Context, repo, digest string, tags []string, pushedAt time.Time) (bool, error)

	CreateAccessKey(ctx context.Context, k store.AccessKey) error
	UpdateAccessKeyPolicy(ctx context.Context, id, preset, policy string) error
	AccessKey(ctx context.Context, id string) (store.AccessKey, error)
	ListAccessKeys(ctx context.Context) ([]store.AccessKey, error)
	DeleteAccessKey(ctx context.Context, id string) error
	Setting(ctx context.Context, key string) (string, error)
	PutSetting(ctx context.Context, key, value string) error
	SettingOrInit(ctx context.Context, key string, init func() (string, error)) (string, error)

	ResourcePolicies(ctx context.Context, repo string) (registry, repository string, err error)
	RepositoryPolicies(ctx context.Context, repos []string) (registry string, repository map[string]string, err error)
	RepositoryPolicy(ctx context.Context, repo string) (string, error)
	PutRepositoryPolicy(ctx context.Context, repo, policy string) error
	DeleteRepositoryPolicy(ctx context.Context, repo string) (string, error)
	RegistryPolicy(ctx context.Context) (string, error)
	PutRegistryPolicy(ctx context.Context, policy string) error
	DeleteRegistryPolicy(ctx context.Context) (string, error)

	RepositoryPullGate(ctx context.Context, repo string) (pullgate.Policy, bool, error)
	SetRepositoryPullGate(ctx context.Context, repo string, p pullgate.Policy) error
	DeleteRepositoryPullGate(ctx context.Context, repo string) (bool, error)
	RepositoryPullGates(ctx context.Context) (map[string]pullgate.Policy, error)

	ScanningPolicy(ctx context.Context) (policy.Policy, error)
	PutScanningPolicy(ctx context.Context, p policy.Policy) error

	SetEffects(fn store.EffectsFunc, committed func(store.Effects))
	AppendOutbox(ctx context.Context, events ...store.OutboxEvent) error
	ReadOutbox(ctx context.Context, afterSeq int64, limit int) ([]store.OutboxEvent, error)
	InitWebhookCursors(ctx context.Context, names []string) (map[string]int64, error)
	AdvanceWebhookCursor(ctx context.Context, webhook string, seq int64) error
	WebhookCursors(ctx context.Context) (positions map[string]int64, end int64, err error)
	PruneOutbox(ctx context.Context, before time.Time) (int64, error)

	EnqueueScans(ctx context.Context, jobs ...store.ScanJob) error
	ClaimScanJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (store.ScanJob, bool, error)
	ReleaseScanJob(ctx context.Context, id int64) error
	ExtendScanLease(ctx context.Context, id int64, owner string, t time.Time) error
	RunningScanJobs(ctx context.Context) ([]store.ScanJob, error)
	PendingScanJobs(ctx context.Context) (int, error)
	ImageScan(ctx context.Context, repo, digest, scanType string) (store.ImageScan, error)
	PutImageScan(ctx context.Context, s store.ImageScan) error
	ImageScans(ctx context.Context, repo string, digests []string) (map[string][]store.ImageScan, error)

	LayerInventory(ctx context.Context, layerDigest, mode, fingerprint string) ([]byte, error)
	PutLayerInventory(ctx context.Context, layerDigest, mode, fingerprint string, inventory []byte) error
	PutImageInventory(ctx context.Context, digest, mode, fingerprint string, os string, keys []store.PackageKey, packages int, inventory []byte, parts []store.InventoryPart) (int64, error)
	ImageInventory(ctx context.Context, id int64) ([]byte, error)
	InventoryParts(ctx context.Context, hashes [][]byte) ([][]byte, error)
	InventoriesHolding(ctx context.Context, scanType string, keys []store.PackageKey) ([]store.InventoryRef, error)
	InventoryPartsHolding(ctx context.Context, keys []store.PackageKey) ([][]byte, error)
	PruneInventories(ctx context.Context, cutoff time.Time, dryRun bool) (store.InventoryPrune, error)
	RecentImages(ctx context.Context, since time.Time) ([]store.Manifest, error)

	CreateReportJob(ctx context.Context, j store.ReportJob) error
	ReportJob(ctx context.Context, kind, id string) (store.ReportJob, error)
	LatestReportJob(ctx context.Context, kind string) (store.ReportJob, error)
	FinishReportJob(ctx context.Context, id, status, code, message string, files []string, at time.Time) (bool, error)
	RunningReportJobs(ctx context.Context) ([]store.ReportJob, error)
	ScannedImages(ctx context.Context, scanType string) ([]store.InventoriedImage, error)
	ReportFile(ctx context.Context, bucket, key string) (store.ReportJob, error)

	EnhancedScans(ctx context.Context) ([]store.ScannedImage, error)
	CoverageRows(ctx context.Context, names []string, afterRepo, afterDigest string, limit int) ([]findings.CoverageRow, error)
	CoverageCounts(ctx context.Context, q findings.CoverageCountQuery) (findings.CoverageCounts, error)

	SetFindingContext(fc store.FindingContext)
	ApplyScans(ctx context.Context, targets []store.ScanTarget, update func(store.ScanState) (store.ScanUpdate, error)) error
	ApplyScansSelected(ctx context.Context, targets []store.ScanTarget, sel store.FindingSelection, update func(store.ScanState) (store.ScanUpdate, error)) error
	Findings(ctx context.Context, repo, digest, scanType string) ([]store.Finding, error)
	UsageSince(ctx context.Context, t time.Time) ([]store.Usage, error)
	BlockingFindings(ctx context.Context, repo, digest, scanType string, minRank int, observedBy time.Time) ([]string, error)
	QueryFindings(ctx context.Context, q findings.Query) ([]findings.Listed, error)
	ActiveFindingCounts(ctx context.Context, repo string, digests []string, scanType string) (map[string]map[string]int, error)
	RepositoryFindingCounts(ctx context.Context, scanType string) (map[string]map[string]int, error)
	FindingDays(ctx context.Context, from time.Time, days int) ([]findings.DayCount, error)
	FindingsByARN(ctx context.Context, arns []string) ([]findings.Listed, error)
	CreateFilter(ctx context.Context, r suppression.Rule, announce suppression.Announce) error
	UpdateFilter(ctx context.Context, arn string, change func(*suppression.Rule) error, announce suppression.Announce) (suppression.Rule, error)
	DeleteFilter(ctx context.Context, arn string, announce suppression.Announce) (suppression.Rule, error)
	ListFilters(ctx context.Context, q suppression.ListQuery) ([]suppression.Rule, error)
	AggregateFindings(ctx context.Context, q findings.AggregationQuery) ([]findings.AggregateRow, error)
}

// Opener returns a new, empty store, closed when t ends.
type Opener func(t *testing.T) Store

// Run runs every case of the suite, each on a store of its own, in parallel.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Opener)
	}{
		{"PutManifestChecksReferences", testPutManifestChecksReferences},
		{"IndexChildrenAndDeletion", testIndexChildrenAndDeletion},
		{"ImmutableTags", testImmutableTags},
		{"RefuseUnchanged", testRefuseUnchanged},
		{"ListingsPaginate", testListingsPaginate},
		{"Referrers", testReferrers},
		{"UploadsAndPulls", testUploadsAndPulls},
		{"DeleteRepository", testDeleteRepository},
		{"RepositorySettings", testRepositorySettings},
		{"UnlinkBlobReferencedByManifest", testUnlinkBlobReferencedByManifest},
		{"UnlinkBlobOfIndexChild", testUnlinkBlobOfIndexChild},
		{"PutManifestChecksSizes", testPutManifestChecksSizes},
		{"ImageQueries", testImageQueries},
		{"ScanningPolicyRoundTrip", testScanningPolicyRoundTrip},
		{"AccessKeyPolicies", testAccessKeyPolicies},
		{"AccessKeys", testAccessKeys},
		{"Settings", testSettings},
		{"Leases", testLeases},
		{"ResourcePolicies", testResourcePolicies},
		{"CoverageCounts", testCoverageCounts},
		{"RepositoryPullGates", testRepositoryPullGates},
		{"GarbageCollection", testGarbageCollection},
		{"UploadSessions", testUploadSessions},
		{"LifecyclePolicies", testLifecyclePolicies},
		{"LifecycleImagesAndExpiry", testLifecycleImagesAndExpiry},
		{"AppendAndReadOutbox", testAppendAndReadOutbox},
		{"AppendOutboxRejectsBadEventsWritingNothing", testAppendOutboxRejectsBadEventsWritingNothing},
		{"WebhookCursors", testWebhookCursors},
		{"PruneOutboxKeepsWhatAWebhookStillNeeds", testPruneOutboxKeepsWhatAWebhookStillNeeds},
		{"EffectsCommitWithTheChange", testEffectsCommitWithTheChange},
		{"ScanJobLeases", testScanJobLeases},
		{"ImageScanStates", testImageScanStates},
		{"LayerInventoryFingerprint", testLayerInventoryFingerprint},
		{"InventoriesHoldingBareEcosystem", testInventoriesHoldingBareEcosystem},
		{"ImageScanNotEvaluated", testImageScanNotEvaluated},
		{"ImageInventoriesAndPruning", testImageInventoriesAndPruning},
		{"ImageInventoryParts", testImageInventoryParts},
		{"InventoryPartKeys", testInventoryPartKeys},
		{"RecentImages", testRecentImages},
		{"ReportJobs", testReportJobs},
		{"ScannedImages", testScannedImages},
		{"Coverage", testCoverage},
		{"AdvisoryBatchesAndVersions", testAdvisoryBatchesAndVersions},
		{"AdvisoryBatchConflictAndAbort", testAdvisoryBatchConflictAndAbort},
		{"AdvisoryChangeSetsArePruned", testAdvisoryChangeSetsArePruned},
		{"AdvisoryStatus", testAdvisoryStatus},
		{"FindingDetailsReadOnDemand", testFindingDetailsReadOnDemand},
		{"ApplyScansSelected", testApplyScansSelected},
		{"ApplyScansSelectedNoneHeld", testApplyScansSelectedNoneHeld},
		{"ApplyScansRewritesScanState", testApplyScansRewritesScanState},
		{"ApplyScansManyTargets", testApplyScansManyTargets},
		{"QueryFindingsCriteria", testQueryFindingsCriteria},
		{"QueryFindingsSortAndPages", testQueryFindingsSortAndPages},
		{"FindingsByARN", testFindingsByARN},
		{"FindingsByARNOfAnyShape", testFindingsByARNOfAnyShape},
		{"QueryFindingsByReachability", testQueryFindingsByReachability},
		{"FindingCountsAndDays", testFindingCountsAndDays},
		{"SuppressionRules", testSuppressionRules},
		{"ListFiltersPages", testListFiltersPages},
		{"BlockingFindings", testBlockingFindings},
		{"AggregateFindings", testAggregateFindings},
		{"FindingDetailWithNUL", testFindingDetailWithNUL},
		{"AnnotationsWithNUL", testAnnotationsWithNUL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open)
		})
	}
}

func manifest(repo, digest string) store.Manifest {
	return store.Manifest{Repository: repo, Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 10, Content: []byte("{}")}
}

// fakeDigest returns a fake but well-formed sha256 digest ending in c.
func fakeDigest(c string) string {
	d := "sha256:"
	for len(d)+len(c) < 71 {
		d += "0"
	}
	return d + c
}

// clock is a time tests move by hand, for SetClock.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) set(t time.Time)     { c.ms.Store(t.UnixMilli()) }
func (c *clock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *clock) Now() time.Time      { return time.UnixMilli(c.ms.Load()).UTC() }
