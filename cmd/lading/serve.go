package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/gc"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/lease"
	"github.com/lading-registry/lading/internal/vulndb"
)

// commonFlags are shared by every command that opens the data directory.
type commonFlags struct {
	dataDir   string
	metadata  string
	logLevel  string
	logFormat string
}

// metadataUsage describes --metadata, which every command that opens the store takes.
const metadataUsage = "metadata store: empty for SQLite in the data dir, or postgres://user@host:port/database (nodes sharing it each keep a data dir for their secret key file and caches)"

func (c *commonFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.dataDir, "data-dir", "./lading-data", "directory holding blobs and the metadata database")
	cmd.Flags().StringVar(&c.metadata, "metadata", "", metadataUsage)
	cmd.Flags().StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
}

func (c *commonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", c.logLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", c.logFormat)
	}
}

// registerBlobsFlag adds --blobs, which every command that opens the blob store takes.
func registerBlobsFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "blobs", "", "where blobs are kept: empty for files in the data dir, or s3://bucket[/prefix]?endpoint=URL&region=R (credentials from the standard AWS environment and config files)")
}

func newServeCommand() *cobra.Command {
	var common commonFlags
	var maxBlobSize, minFreeSpace, cpuProfile string
	cfg := app.Config{}
	api := true
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := common.logger(os.Stderr)
			if err != nil {
				return err
			}
			if cfg.MaxBlobSize, err = parseBytes("--max-blob-size", maxBlobSize); err != nil {
				return err
			}
			if cfg.MinFreeSpace, err = parseBytes("--min-free-space", minFreeSpace); err != nil {
				return err
			}
			cfg.DataDir, cfg.Metadata = common.dataDir, common.metadata
			cfg.NoAPI = !api
			cfg.Logger = log
			cfg.Version = versionString()
			cfg.AdminAccessKeyID = os.Getenv("LADING_ADMIN_ACCESS_KEY_ID")
			cfg.AdminSecretAccessKey = os.Getenv("LADING_ADMIN_SECRET_ACCESS_KEY")
			cfg.SecretKey = os.Getenv(auth.SecretKeyEnv)
			prof, err := startProfiles(cmd.Context(), cpuProfile, "")
			if err != nil {
				return err
			}
			a, err := app.Open(cmd.Context(), cfg)
			if err != nil {
				return errors.Join(err, prof.Stop())
			}
			defer a.Close()
			return errors.Join(a.Serve(cmd.Context()), prof.Stop())
		},
	}
	common.register(cmd)
	f := cmd.Flags()
	registerBlobsFlag(cmd, &cfg.Blobs)
	f.BoolVar(&cfg.S3Redirect, "s3-redirect", false, "with --blobs s3://..., answer blob GETs and GetDownloadUrlForLayer with presigned URLs of the bucket (clients must reach it)")
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:5000", "address to listen on")
	f.StringVar(&cfg.Region, "region", "us-east-1", "AWS region this registry presents itself as")
	f.StringVar(&cfg.TLS.CertFile, "tls-cert", "", "serve HTTPS (and HTTP/2) with this PEM certificate (chain); reloaded when it changes")
	f.StringVar(&cfg.TLS.KeyFile, "tls-key", "", "the PEM private key of --tls-cert")
	f.BoolVar(&cfg.TLS.SelfSigned, "tls-self-signed", false, "serve HTTPS with a self-signed certificate for the listen address, made once and kept in <data-dir>/tls (give clients tls/cert.pem as their CA)")
	f.StringVar(&cfg.RegistryID, "registry-id", "000000000000", "12-digit registry (account) id")
	f.BoolVar(&cfg.CreateOnPush, "create-on-push", true, "create repositories on first push")
	f.BoolVar(&cfg.AnonymousPull, "anonymous-pull", false, `let anyone pull and list every repository without credentials (as if every repository's policy allowed Principal "*" to pull; a repository policy does it for one)`)
	f.DurationVar(&cfg.UploadTTL, "upload-ttl", 24*time.Hour, "remove upload sessions idle this long")
	f.StringVar(&maxBlobSize, "max-blob-size", "0", "refuse blobs (layers) larger than this, e.g. 10GiB; 0 for no limit")
	f.StringVar(&minFreeSpace, "min-free-space", "256MiB", "refuse uploads that would leave less free space than this on the data dir's volume; 0 to let the disk fill")
	f.IntVar(&cfg.AuthThrottle.FreeFailures, "auth-free-failures", 5, "failed authentications a client address or access key may make within --auth-failure-window before it is slowed down")
	f.DurationVar(&cfg.AuthThrottle.BaseBackoff, "auth-backoff-base", time.Second, "first wait imposed after the free failures; it doubles with each further failure")
	f.DurationVar(&cfg.AuthThrottle.MaxBackoff, "auth-backoff-max", 5*time.Minute, "longest wait imposed after failed authentications")
	f.DurationVar(&cfg.AuthThrottle.Window, "auth-failure-window", 15*time.Minute, "a client address or access key with no failed authentication for this long is forgiven")
	f.StringVar(&cfg.DBSource, "db-source", vulndb.DefaultSource, "advisory mirror in OSV's bucket layout (URL or folder) to sync from; none disables syncing")
	f.DurationVar(&cfg.DBSyncInterval, "db-sync-interval", time.Hour, "how often to sync advisories from --db-source")
	f.DurationVar(&cfg.MaxDBAge, "max-db-age", 7*24*time.Hour, "/readyz says the advisory database is not current when its newest advisory is older than this (0: no limit)")
	f.IntVar(&cfg.ScanWorkers, "scan-workers", 2, "scans run at once")
	f.DurationVar(&cfg.ScanTimeout, "scan-timeout", 10*time.Minute, "a scan taking longer fails")
	f.StringVar(&cfg.GzipDecoder, "gzip-decoder", inventory.GzipDecoderAuto, gzipDecoderHelp)
	f.BoolVar(&api, "api", true, "serve the registry, ECR, Inspector and console; --api=false makes a scan-only node (background work, /healthz, /readyz and /metrics only)")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", lease.DefaultTTL, "with several nodes on one --metadata, how long a node's hold on a once-per-registry duty (gc, lifecycle, advisory sync, continuous re-evaluation) or on a webhook's delivery lasts unrenewed: how soon another node takes over from one that died")
	f.DurationVar(&cfg.ScanLease, "scan-lease", 30*time.Second, "a scan job claimed by a node that stops heartbeating (it died) is taken by another node after this long")
	f.DurationVar(&cfg.RescanDuration, "rescan-duration", 14*24*time.Hour, "continuous scanning covers images pushed or pulled within this long (Inspector's rescan duration) until UpdateConfiguration sets it")
	f.StringVar(&cfg.ReportsDir, "reports-dir", "", "directory Inspector's SBOM exports and findings reports are written to, as <bucketName>/<keyPrefix>/... (default <data-dir>/reports)")
	f.BoolVar(&cfg.AttachSBOM, "attach-sbom", true, "attach each scanned image's CycloneDX SBOM in the registry as an OCI referrer of the image (replaced at each rescan)")
	f.StringArrayVar(&cfg.EventWebhooks, "event-webhook", nil, "POST EventBridge-shaped events to this URL (repeatable)")
	f.StringVar(&cfg.EventWebhookSecret, "event-webhook-secret", "", "HMAC-SHA256 secret signing requests to --event-webhook URLs (default $LADING_EVENT_WEBHOOK_SECRET)")
	f.DurationVar(&cfg.LifecycleInterval, "lifecycle-interval", time.Hour, "apply repositories' lifecycle policies this often (0: never; previews work regardless)")
	f.DurationVar(&cfg.GCInterval, "gc-interval", time.Hour, "run garbage collection this often (0: never; `lading admin gc` runs it by hand)")
	f.DurationVar(&cfg.GCGrace, "gc-grace", gc.DefaultGrace, "garbage collection spares blob links and blobs younger than this: longer than any push takes between its layers and its manifest")
	f.DurationVar(&cfg.ConsoleSessionTTL, "console-session-ttl", 12*time.Hour, "a web console sign-in (under /console/) lasts this long")
	f.StringVar(&cfg.AuditLog, "audit-log", "", "write every mutating call and every refusal as a JSON line to this file (- for standard output)")
	f.StringVar(&cfg.PullGate.Severity, "pull-gate-severity", "", "refuse manifest pulls (GET and HEAD on /v2/) of images with ACTIVE, unsuppressed findings at or above this severity (INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL); the registry default, which `lading admin pull-gate set` overrides per repository")
	f.DurationVar(&cfg.PullGate.Grace, "pull-gate-grace", 0, "the pull gate counts only findings first observed more than this long ago")
	f.StringArrayVar(&cfg.PullGate.Exempt, "pull-gate-exempt", nil, "an identity the pull gate lets through: access key name, access key id or arn:aws:iam::<registry id>:user/<name> (repeatable)")
	// Hidden, for developers: where a node's CPU time goes (bench/nodes -cpuprofile).
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file, written when the server stops")
	_ = f.MarkHidden("cpuprofile")
	f.StringVar(&cfg.EventsConfig, "events-config", "", "YAML or JSON file listing webhooks (url, name, secret|secret_env|secret_file, detail_types)")
	return cmd
}

// parseBytes reads a size such as "512MiB", "10GB" or "1048576".
func parseBytes(flag, v string) (int64, error) {
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", flag, v, err)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("%s %q: too large", flag, v)
	}
	return int64(n), nil
}
