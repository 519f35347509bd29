package app

import (
	"context"
	"time"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/console"
	"github.com/lading-registry/lading/internal/ecr"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/gc"
	"github.com/lading-registry/lading/internal/lease"
	"github.com/lading-registry/lading/internal/lifecycle"
	"github.com/lading-registry/lading/internal/oci"
	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/reports"
	"github.com/lading-registry/lading/internal/sbom"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/suppression"
	"github.com/lading-registry/lading/internal/vulndb"
)

// Meta is the metadata store as the app wires it: what every face and service needs of it,
// met by store/sqlite (embedded, the default) and store/postgres (--metadata postgres://...).
type Meta interface {
	oci.Metadata
	ecr.Metadata
	ecr.Policies
	auth.KeyStore
	auth.PolicyStore
	auth.SecretStore
	vulndb.Store
	events.Store
	scanning.Store
	scanning.ResultStore
	findings.Store
	findings.CoverageStore
	findings.TrendStore
	suppression.Store
	pullgate.Store
	lifecycle.Store
	reports.Store
	sbom.Store
	console.Store
	gc.Meta
	lease.Store

	SetClock(now func() time.Time)
	SetFindingContext(fc store.FindingContext)
	SetEffects(fn store.EffectsFunc, committed func(store.Effects))
	Ping(ctx context.Context) error
	Close() error
	outbox
	UsageSince(ctx context.Context, t time.Time) ([]store.Usage, error)
	SetRepositoryPullGate(ctx context.Context, repo string, p pullgate.Policy) error
	DeleteRepositoryPullGate(ctx context.Context, repo string) (bool, error)
	RepositoryPullGates(ctx context.Context) (map[string]pullgate.Policy, error)
	DeleteUploadsBefore(ctx context.Context, t time.Time) ([]string, error)
	// CountUploads is how many upload sessions are open (a metric).
	CountUploads(ctx context.Context) (int64, error)
}

var (
	_ Meta = (*sqlite.DB)(nil)
	_ Meta = (*postgres.DB)(nil)
)
