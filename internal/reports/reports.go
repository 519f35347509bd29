// Package reports runs Inspector's SBOM exports and findings reports: jobs that run in the
// background and write their files into the reports directory, under <bucket>/<keyPrefix>/ as
// Inspector lays them out in S3 (see Layout), and serves those files back. Job rows live in the
// metadata store; a job still running when its process ends is marked FAILED at the next start.
package reports

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/sbom"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// Job statuses and error codes, as Inspector names them.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusSucceeded  = "SUCCEEDED"
	StatusFailed     = "FAILED"
	StatusCancelled  = "CANCELLED"

	ErrorInternal        = "INTERNAL_ERROR"
	ErrorNoFindingsFound = "NO_FINDINGS_FOUND"
)

// Formats.
const (
	FormatCycloneDX14 = "CYCLONEDX_1_4"
	FormatSPDX23      = "SPDX_2_3"
	FormatCSV         = "CSV"
	FormatJSON        = "JSON"
)

// ErrNotFound means no report has that id (ResourceNotFoundException).
var ErrNotFound = errors.New("report not found")

// Store is what the jobs need from the metadata store.
type Store interface {
	sbom.Store
	CreateReportJob(ctx context.Context, j store.ReportJob) error
	ReportJob(ctx context.Context, kind, id string) (store.ReportJob, error)
	LatestReportJob(ctx context.Context, kind string) (store.ReportJob, error)
	FinishReportJob(ctx context.Context, id, status, code, message string, files []string, at time.Time) (bool, error)
	RunningReportJobs(ctx context.Context) ([]store.ReportJob, error)
	ReportFile(ctx context.Context, bucket, key string) (store.ReportJob, error)
	ScannedImages(ctx context.Context, scanType string) ([]store.InventoriedImage, error)
	ScanningPolicy(ctx context.Context) (policy.Policy, error)
}

// Findings lists findings (the findings service).
type Findings interface {
	List(ctx context.Context, in findings.ListInput) (findings.ListOutput, error)
}

// Encoder gives a finding's shape in a findings report: the Inspector face's, since a report
// holds the findings ListFindings returns.
type Encoder interface {
	CSVHeader() []string
	CSVRecord(l findings.Listed) ([]string, error)
	JSONFinding(l findings.Listed) (any, error)
}

// Config tunes the service.
type Config struct {
	// Dir is the reports directory; buckets are its subdirectories.
	Dir         string
	Account     string
	Region      string
	ToolVersion string
	Now         func() time.Time
	Logger      *slog.Logger
}

// Service creates, runs, cancels and describes report jobs.
type Service struct {
	st    Store
	fs    Findings
	enc   Encoder
	cfg   Config
	owner string
	// base is the context jobs run in: cancelled when Run's context ends.
	base context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	mu   sync.Mutex
	// running cancels the jobs of this process, by id.
	running map[string]context.CancelFunc
	// slots bounds the jobs working at once; the others wait, IN_PROGRESS.
	slots chan struct{}
}

// maxConcurrentJobs is how many jobs of a process work at once: a report reads the whole
// registry, and callers may ask for many.
const maxConcurrentJobs = 2

// New returns the service. Run must run for the jobs to be stopped cleanly at shutdown.
func New(st Store, fs Findings, enc Encoder, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	host, _ := os.Hostname()
	base, stop := context.WithCancel(context.Background())
	return &Service{st: st, fs: fs, enc: enc, cfg: cfg, owner: host + "/" + strconv.Itoa(os.Getpid()), base: base, stop: stop,
		running: map[string]context.CancelFunc{}, slots: make(chan struct{}, maxConcurrentJobs)}
}

// Run marks the jobs a previous process left running as FAILED, then waits for ctx to end,
// stops the jobs still running (they end FAILED: the process stopped them) and returns when
// they have.
func (s *Service) Run(ctx context.Context) {
	s.failOrphans(ctx)
	<-ctx.Done()
	s.stop()
	s.wg.Wait()
}

func (s *Service) failOrphans(ctx context.Context) {
	// A start-up chore: done even when the server is already stopping.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	jobs, err := s.st.RunningReportJobs(ctx)
	if err != nil {
		s.cfg.Logger.Warn("list running reports", "err", err)
		return
	}
	host, _, _ := strings.Cut(s.owner, "/")
	for _, j := range jobs {
		h, pid, _ := strings.Cut(j.Owner, "/")
		if j.Owner == s.owner || h != host {
			continue // ours, or another node's
		}
		if _, err := os.Stat("/proc/" + pid); pid != "" && err == nil {
			continue // another process on this host runs it
		}
		if _, err := s.st.FinishReportJob(ctx, j.ID, StatusFailed, ErrorInternal, "Lading restarted while the report was being made", j.Files, s.cfg.Now()); err != nil {
			s.cfg.Logger.Warn("fail interrupted report", "report_id", j.ID, "err", err)
		}
	}
}

// SBOMExport is a CreateSbomExport request.
type SBOMExport struct {
	Format      string
	Criteria    ResourceCriteria
	Destination Destination
	// CriteriaJSON is the criteria as the request gave them, echoed by GetSbomExport.
	CriteriaJSON string
}

// FindingsReport is a CreateFindingsReport request.
type FindingsReport struct {
	Format       string
	Criteria     findings.Criteria
	Destination  Destination
	CriteriaJSON string
}

// CreateSBOMExport validates an export, records it and starts it; it returns the report id.
func (s *Service) CreateSBOMExport(ctx context.Context, in SBOMExport) (string, error) {
	if in.Format != FormatCycloneDX14 && in.Format != FormatSPDX23 {
		return "", findings.Invalid(findings.ReasonFieldValidationFailed, "reportFormat", "must be one of CYCLONEDX_1_4, SPDX_2_3")
	}
	if err := in.Criteria.Validate("resourceFilterCriteria"); err != nil {
		return "", err
	}
	dest, err := in.Destination.Validate()
	if err != nil {
		return "", err
	}
	return s.start(ctx, store.ReportSBOMExport, in.Format, dest, in.CriteriaJSON, func(ctx context.Context, j *job) error {
		return s.exportSBOMs(ctx, j, in.Criteria)
	})
}

// CreateFindingsReport validates a report, records it and starts it; it returns the report id.
// Without a findingStatus criterion, the report holds the ACTIVE findings, as Inspector's.
func (s *Service) CreateFindingsReport(ctx context.Context, in FindingsReport) (string, error) {
	if in.Format != FormatCSV && in.Format != FormatJSON {
		return "", findings.Invalid(findings.ReasonFieldValidationFailed, "reportFormat", "must be one of CSV, JSON")
	}
	if err := findings.Validate("filterCriteria", in.Criteria, nil); err != nil {
		return "", err
	}
	dest, err := in.Destination.Validate()
	if err != nil {
		return "", err
	}
	c := in.Criteria
	if _, ok := c.Strings[findings.FindingStatus]; !ok {
		strs := map[findings.Field][]findings.StringFilter{findings.FindingStatus: {{Comparison: findings.Equals, Value: "ACTIVE"}}}
		for f, v := range c.Strings {
			strs[f] = v
		}
		c.Strings = strs
	}
	return s.start(ctx, store.ReportFindingsReport, in.Format, dest, in.CriteriaJSON, func(ctx context.Context, j *job) error {
		return s.writeFindingsReport(ctx, j, c)
	})
}

// job is a running job: its row and the files written so far.
type job struct {
	store.ReportJob
	written []string
}

// failure is a job's end with an Inspector error code other than INTERNAL_ERROR.
type failure struct{ code, message string }

func (f *failure) Error() string { return f.message }

func (s *Service) start(ctx context.Context, kind, format string, dest Destination, criteria string, run func(context.Context, *job) error) (string, error) {
	now := s.cfg.Now()
	j := &job{ReportJob: store.ReportJob{ID: uuid.NewString(), Kind: kind, Format: format, Status: StatusInProgress, Bucket: dest.Bucket,
		KeyPrefix: dest.KeyPrefix, KMSKeyARN: dest.KMSKeyARN, Criteria: criteria, Owner: s.owner, CreatedAt: now, UpdatedAt: now}}
	if err := s.st.CreateReportJob(ctx, j.ReportJob); err != nil {
		return "", fmt.Errorf("create report: %w", err)
	}
	jctx, cancel := context.WithCancel(s.base)
	s.mu.Lock()
	s.running[j.ID] = cancel
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, j.ID)
			s.mu.Unlock()
			cancel()
		}()
		log := s.cfg.Logger.With("report_id", j.ID, "kind", kind, "format", format)
		var err error
		select {
		case s.slots <- struct{}{}:
			err = run(jctx, j)
			<-s.slots
		case <-jctx.Done():
			err = jctx.Err()
		}
		status, code, msg := StatusSucceeded, "", ""
		var f *failure
		switch {
		case err == nil:
		case errors.As(err, &f):
			status, code, msg = StatusFailed, f.code, f.message
		case s.base.Err() != nil:
			status, code, msg = StatusFailed, ErrorInternal, "Lading stopped while the report was being made"
		default:
			log.Error("report failed", "err", err)
			status, code, msg = StatusFailed, ErrorInternal, "The report could not be made; the server log says why"
		}
		// The job's own context may be over; the row must still be written.
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(jctx), 10*time.Second)
		defer wcancel()
		ended, err := s.st.FinishReportJob(wctx, j.ID, status, code, msg, j.written, s.cfg.Now())
		if err != nil {
			log.Error("record the end of a report", "err", err)
			return
		}
		if !ended {
			// Cancelled meanwhile: Cancel recorded it; what was written goes.
			s.removeFiles(j)
			return
		}
		log.Info("report done", "status", status, "files", len(j.written))
	}()
	return j.ID, nil
}

// get returns a job of a kind; a malformed id is not found either (the model's pattern).
func (s *Service) get(ctx context.Context, kind, id string) (store.ReportJob, error) {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return store.ReportJob{}, fmt.Errorf("%w: %q", ErrNotFound, truncate(id))
	}
	j, err := s.st.ReportJob(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return j, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return j, err
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// SBOMExport returns an SBOM export's job.
func (s *Service) SBOMExport(ctx context.Context, id string) (store.ReportJob, error) {
	return s.get(ctx, store.ReportSBOMExport, id)
}

// FindingsReportStatus returns a findings report's job; without an id, the latest one.
func (s *Service) FindingsReportStatus(ctx context.Context, id *string) (store.ReportJob, error) {
	if id == nil {
		j, err := s.st.LatestReportJob(ctx, store.ReportFindingsReport)
		if errors.Is(err, store.ErrNotFound) {
			return j, fmt.Errorf("%w: no findings report was created", ErrNotFound)
		}
		return j, err
	}
	return s.get(ctx, store.ReportFindingsReport, *id)
}

// CancelSBOMExport cancels an SBOM export.
func (s *Service) CancelSBOMExport(ctx context.Context, id string) error {
	return s.cancel(ctx, store.ReportSBOMExport, id)
}

// CancelFindingsReport cancels a findings report.
func (s *Service) CancelFindingsReport(ctx context.Context, id string) error {
	return s.cancel(ctx, store.ReportFindingsReport, id)
}

// cancel ends a job IN_PROGRESS as CANCELLED, stops it if this process runs it, and removes
// the files it wrote. A job that has ended already is left as it is (cancelling is
// idempotent, as the model's answer, the report id, says nothing else).
func (s *Service) cancel(ctx context.Context, kind, id string) error {
	j, err := s.get(ctx, kind, id)
	if err != nil {
		return err
	}
	if j.Status != StatusInProgress {
		return nil
	}
	s.mu.Lock()
	stop := s.running[id]
	s.mu.Unlock()
	ok, err := s.st.FinishReportJob(ctx, id, StatusCancelled, "", "", nil, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("cancel report: %w", err)
	}
	if ok && stop != nil {
		stop()
	}
	return nil
}

// root opens the reports directory, creating it.
func (s *Service) root() (*os.Root, error) {
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("reports directory: %w", err)
	}
	return os.OpenRoot(s.cfg.Dir)
}

// write writes one file of a job atomically (a temporary file renamed into place), inside the
// reports directory: os.Root refuses any path, symbolic links included, that would leave it.
func (s *Service) write(ctx context.Context, j *job, key string, content func(w io.Writer) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := s.root()
	if err != nil {
		return err
	}
	defer root.Close()
	name := path.Join(j.Bucket, key)
	if err := root.MkdirAll(path.Dir(name), 0o700); err != nil {
		return fmt.Errorf("report file %s: %w", name, err)
	}
	tmp := name + ".tmp-" + j.ID
	f, err := root.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("report file %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = root.Remove(tmp)
		}
	}()
	bw := bufio.NewWriter(f)
	err = content(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("report file %s: %w", name, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		return fmt.Errorf("report file %s: %w", name, err)
	}
	j.written = append(j.written, key)
	return nil
}

// File opens a file a job wrote, for download, with its job (whose kind decides who may read
// it). Only the files jobs recorded are served.
func (s *Service) File(ctx context.Context, bucket, key string) (*os.File, store.ReportJob, error) {
	if !validBucket(bucket) {
		return nil, store.ReportJob{}, fmt.Errorf("%w: no bucket %q", ErrNotFound, truncate(bucket))
	}
	if _, ok := cleanKeyPrefix(key); !ok || key == "" || strings.HasSuffix(key, "/") {
		return nil, store.ReportJob{}, fmt.Errorf("%w: no key %q", ErrNotFound, truncate(key))
	}
	j, err := s.st.ReportFile(ctx, bucket, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, j, fmt.Errorf("%w: no report wrote %s/%s", ErrNotFound, bucket, truncate(key))
	}
	if err != nil {
		return nil, j, err
	}
	root, err := s.root()
	if err != nil {
		return nil, j, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(path.Join(bucket, key)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, j, fmt.Errorf("%w: %s/%s was removed", ErrNotFound, bucket, truncate(key))
	}
	return f, j, err
}
