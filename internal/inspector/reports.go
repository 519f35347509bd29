package inspector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/reports"
	"github.com/lading-registry/lading/internal/store"
)

// Reports is what the face needs from the report jobs (internal/reports).
type Reports interface {
	CreateSBOMExport(ctx context.Context, in reports.SBOMExport) (string, error)
	SBOMExport(ctx context.Context, id string) (store.ReportJob, error)
	CancelSBOMExport(ctx context.Context, id string) error
	CreateFindingsReport(ctx context.Context, in reports.FindingsReport) (string, error)
	FindingsReportStatus(ctx context.Context, id *string) (store.ReportJob, error)
	CancelFindingsReport(ctx context.Context, id string) error
}

// reportIDPattern is the model's ReportId pattern.
var reportIDPattern = regexp.MustCompile(`\b[a-f0-9]{8}\b-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-\b[a-f0-9]{12}\b`)

// maxReportID bounds a report id before the pattern reads it.
const maxReportID = 256

type destinationWire struct {
	BucketName *string `json:"bucketName"`
	KeyPrefix  *string `json:"keyPrefix"`
	KMSKeyARN  *string `json:"kmsKeyArn"`
}

type destinationOut struct {
	BucketName string `json:"bucketName"`
	KeyPrefix  string `json:"keyPrefix,omitempty"`
	KMSKeyARN  string `json:"kmsKeyArn"`
}

type resourceStringFilterWire struct {
	Comparison *string `json:"comparison"`
	Value      *string `json:"value"`
}

type resourceMapFilterWire struct {
	Comparison *string `json:"comparison"`
	Key        *string `json:"key"`
	Value      *string `json:"value,omitempty"`
}

type resourceCriteriaWire struct {
	AccountID          []resourceStringFilterWire `json:"accountId,omitempty"`
	EC2InstanceTags    []resourceMapFilterWire    `json:"ec2InstanceTags,omitempty"`
	ECRImageTags       []resourceStringFilterWire `json:"ecrImageTags,omitempty"`
	ECRRepositoryName  []resourceStringFilterWire `json:"ecrRepositoryName,omitempty"`
	LambdaFunctionName []resourceStringFilterWire `json:"lambdaFunctionName,omitempty"`
	LambdaFunctionTags []resourceMapFilterWire    `json:"lambdaFunctionTags,omitempty"`
	ResourceID         []resourceStringFilterWire `json:"resourceId,omitempty"`
	ResourceType       []resourceStringFilterWire `json:"resourceType,omitempty"`
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// decodeDestination reads an s3Destination (required members checked; the rest is the domain's).
func decodeDestination(raw json.RawMessage, path string) (reports.Destination, error) {
	if !present(raw) {
		return reports.Destination{}, findings.Invalid(findings.ReasonFieldValidationFailed, path, "is required")
	}
	var w destinationWire
	if err := strict(raw, path, &w); err != nil {
		return reports.Destination{}, err
	}
	if w.BucketName == nil {
		return reports.Destination{}, findings.Invalid(findings.ReasonFieldValidationFailed, path+".bucketName", "is required")
	}
	if w.KMSKeyARN == nil {
		return reports.Destination{}, findings.Invalid(findings.ReasonFieldValidationFailed, path+".kmsKeyArn", "is required")
	}
	d := reports.Destination{Bucket: *w.BucketName, KMSKeyARN: *w.KMSKeyARN}
	if w.KeyPrefix != nil {
		d.KeyPrefix = *w.KeyPrefix
	}
	return d, nil
}

func destinationOf(j store.ReportJob) destinationOut {
	return destinationOut{BucketName: j.Bucket, KeyPrefix: j.KeyPrefix, KMSKeyARN: j.KMSKeyARN}
}

func resourceFilters(list []resourceStringFilterWire, path string) ([]reports.ResourceFilter, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]reports.ResourceFilter, len(list))
	for i, f := range list {
		if f.Comparison == nil || f.Value == nil {
			return nil, findings.Invalid(findings.ReasonFieldValidationFailed, path+"["+strconv.Itoa(i)+"]", "comparison and value are required")
		}
		out[i] = reports.ResourceFilter{Comparison: *f.Comparison, Value: *f.Value}
	}
	return out, nil
}

func resourceMapFilters(list []resourceMapFilterWire, path string) ([]reports.ResourceMapFilter, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]reports.ResourceMapFilter, len(list))
	for i, f := range list {
		if f.Comparison == nil || f.Key == nil {
			return nil, findings.Invalid(findings.ReasonFieldValidationFailed, path+"["+strconv.Itoa(i)+"]", "comparison and key are required")
		}
		out[i] = reports.ResourceMapFilter{Comparison: *f.Comparison, Key: *f.Key}
		if f.Value != nil {
			out[i].Value = *f.Value
		}
	}
	return out, nil
}

// decodeResourceCriteria reads a ResourceFilterCriteria: a member the model does not have is
// refused. It returns the criteria and their JSON as Lading echoes them.
func decodeResourceCriteria(raw json.RawMessage, path string) (reports.ResourceCriteria, string, error) {
	var c reports.ResourceCriteria
	if !present(raw) {
		return c, "", nil
	}
	var w resourceCriteriaWire
	if err := strict(raw, path, &w); err != nil {
		return c, "", err
	}
	var err error
	for _, m := range []struct {
		name string
		in   []resourceStringFilterWire
		out  *[]reports.ResourceFilter
	}{{"accountId", w.AccountID, &c.AccountID}, {"ecrImageTags", w.ECRImageTags, &c.ECRImageTags},
		{"ecrRepositoryName", w.ECRRepositoryName, &c.ECRRepositoryName}, {"lambdaFunctionName", w.LambdaFunctionName, &c.LambdaFunctionName},
		{"resourceId", w.ResourceID, &c.ResourceID}, {"resourceType", w.ResourceType, &c.ResourceType}} {
		if *m.out, err = resourceFilters(m.in, path+"."+m.name); err != nil {
			return c, "", err
		}
	}
	if c.EC2InstanceTags, err = resourceMapFilters(w.EC2InstanceTags, path+".ec2InstanceTags"); err != nil {
		return c, "", err
	}
	if c.LambdaFunctionTags, err = resourceMapFilters(w.LambdaFunctionTags, path+".lambdaFunctionTags"); err != nil {
		return c, "", err
	}
	b, err := json.Marshal(w)
	return c, string(b), err
}

// reportID reads a required reportId member against the model's pattern.
func reportID(id *string) (string, error) {
	if id == nil {
		return "", findings.Invalid(findings.ReasonFieldValidationFailed, "reportId", "is required")
	}
	if len(*id) > maxReportID || !reportIDPattern.MatchString(*id) {
		return "", findings.Invalid(findings.ReasonFieldValidationFailed, "reportId", "must be a report id (a UUID)")
	}
	return *id, nil
}

func requiredFormat(f *string) (string, error) {
	if f == nil {
		return "", findings.Invalid(findings.ReasonFieldValidationFailed, "reportFormat", "is required")
	}
	return *f, nil
}

func (h *Handler) createSbomExport(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		ReportFormat           *string         `json:"reportFormat"`
		ResourceFilterCriteria json.RawMessage `json:"resourceFilterCriteria"`
		S3Destination          json.RawMessage `json:"s3Destination"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	format, err := requiredFormat(in.ReportFormat)
	if err != nil {
		return nil, err
	}
	criteria, echo, err := decodeResourceCriteria(in.ResourceFilterCriteria, "resourceFilterCriteria")
	if err != nil {
		return nil, err
	}
	dest, err := decodeDestination(in.S3Destination, "s3Destination")
	if err != nil {
		return nil, err
	}
	id, err := h.cfg.Reports.CreateSBOMExport(ctx, reports.SBOMExport{Format: format, Criteria: criteria, Destination: dest, CriteriaJSON: echo})
	if err != nil {
		return nil, err
	}
	return map[string]string{"reportId": id}, nil
}

type reportIDWire struct {
	ReportID *string `json:"reportId"`
}

func (h *Handler) getSbomExport(ctx context.Context, _ *call, body []byte) (any, error) {
	var in reportIDWire
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	id, err := reportID(in.ReportID)
	if err != nil {
		return nil, err
	}
	j, err := h.cfg.Reports.SBOMExport(ctx, id)
	if err != nil {
		return nil, err
	}
	return struct {
		ReportID       string          `json:"reportId"`
		Format         string          `json:"format"`
		Status         string          `json:"status"`
		ErrorCode      string          `json:"errorCode,omitempty"`
		ErrorMessage   string          `json:"errorMessage,omitempty"`
		S3Destination  destinationOut  `json:"s3Destination"`
		FilterCriteria json.RawMessage `json:"filterCriteria,omitempty"`
	}{j.ID, j.Format, j.Status, j.ErrorCode, j.ErrorMessage, destinationOf(j), criteriaEcho(j)}, nil
}

func criteriaEcho(j store.ReportJob) json.RawMessage {
	if j.Criteria == "" {
		return nil
	}
	return json.RawMessage(j.Criteria)
}

// cancelReport is CancelSbomExport and CancelFindingsReport: the same request and answer, each
// cancelling its own kind of job (Reports.CancelSBOMExport or Reports.CancelFindingsReport).
func (h *Handler) cancelReport(cancel func(r Reports, ctx context.Context, id string) error) handlerFunc {
	return func(ctx context.Context, _ *call, body []byte) (any, error) {
		var in reportIDWire
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		id, err := reportID(in.ReportID)
		if err != nil {
			return nil, err
		}
		if err := cancel(h.cfg.Reports, ctx, id); err != nil {
			return nil, err
		}
		return map[string]string{"reportId": id}, nil
	}
}

func (h *Handler) createFindingsReport(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		ReportFormat   *string         `json:"reportFormat"`
		FilterCriteria json.RawMessage `json:"filterCriteria"`
		S3Destination  json.RawMessage `json:"s3Destination"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	format, err := requiredFormat(in.ReportFormat)
	if err != nil {
		return nil, err
	}
	criteria, err := decodeCriteria(in.FilterCriteria, "filterCriteria")
	if err != nil {
		return nil, err
	}
	echo := ""
	if present(in.FilterCriteria) {
		var b bytes.Buffer
		if err := json.Compact(&b, in.FilterCriteria); err != nil {
			return nil, cannotParse(err, "filterCriteria")
		}
		echo = b.String()
	}
	dest, err := decodeDestination(in.S3Destination, "s3Destination")
	if err != nil {
		return nil, err
	}
	id, err := h.cfg.Reports.CreateFindingsReport(ctx, reports.FindingsReport{Format: format, Criteria: criteria, Destination: dest, CriteriaJSON: echo})
	if err != nil {
		return nil, err
	}
	return map[string]string{"reportId": id}, nil
}

func (h *Handler) getFindingsReportStatus(ctx context.Context, _ *call, body []byte) (any, error) {
	var in reportIDWire
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var idp *string
	if in.ReportID != nil {
		id, err := reportID(in.ReportID)
		if err != nil {
			return nil, err
		}
		idp = &id
	}
	j, err := h.cfg.Reports.FindingsReportStatus(ctx, idp)
	if err != nil {
		return nil, err
	}
	return struct {
		ReportID       string          `json:"reportId"`
		Status         string          `json:"status"`
		ErrorCode      string          `json:"errorCode,omitempty"`
		ErrorMessage   string          `json:"errorMessage,omitempty"`
		Destination    destinationOut  `json:"destination"`
		FilterCriteria json.RawMessage `json:"filterCriteria,omitempty"`
	}{j.ID, j.Status, j.ErrorCode, j.ErrorMessage, destinationOf(j), criteriaEcho(j)}, nil
}

// FindingEncoder gives findings reports their findings in the shape ListFindings answers with
// (JSON) and as the rows of Inspector's CSV findings report.
type FindingEncoder struct{ h *Handler }

// NewFindingEncoder returns the encoder over the findings service.
func NewFindingEncoder(fs Findings, cfg Config) *FindingEncoder {
	return &FindingEncoder{h: &Handler{findings: fs, cfg: cfg}}
}

// csvHeader is the header row of Inspector's CSV findings report, as reports exported by
// Amazon Inspector have it (the sample header of the Amazon Inspector user guide's "Exporting
// findings reports", with the columns later reports add: Epss Score, Detector Name, Package
// Manager). Columns of resources Lading has no such thing as (EC2, Lambda, network) stay empty.
var csvHeader = []string{"AWS Account Id", "Severity", "Fix Available", "Finding Type", "Title", "Description", "Finding ARN",
	"First Seen", "Last Seen", "Last Updated", "Resource ID", "Container Image Tags", "Region", "Platform", "Resource Tags",
	"Affected Packages", "Package Installed Version", "Fixed in Version", "Package Remediation", "File Path", "Network Paths",
	"Age (Days)", "Remediation", "Inspector Score", "Inspector Score Vector", "Status", "Vulnerability Id", "Vendor",
	"Vendor Severity", "Vendor Advisory", "Vendor Advisory Published", "NVD CVSS3 Score", "NVD CVSS3 Vector", "NVD CVSS2 Score",
	"NVD CVSS2 Vector", "Vendor CVSS3 Score", "Vendor CVSS3 Vector", "Vendor CVSS2 Score", "Vendor CVSS2 Vector", "Resource Type",
	"Ami", "Resource Public Ipv4", "Resource Private Ipv4", "Resource Ipv6", "Resource Vpc", "Port Range", "Epss Score",
	"Exploit Available", "Last Exploited At", "Lambda Layers", "Lambda Package Type", "Lambda Last Updated At", "Reference Urls",
	"Detector Name", "Package Manager"}

// CSVHeader is Inspector's CSV header.
func (e *FindingEncoder) CSVHeader() []string { return append([]string(nil), csvHeader...) }

// JSONFinding is the finding as ListFindings returns it.
func (e *FindingEncoder) JSONFinding(l findings.Listed) (any, error) { return e.h.renderFinding(l) }

func csvTime(t *epoch) string {
	if t == nil {
		return ""
	}
	return time.Time(*t).UTC().Format(time.RFC3339)
}

func csvScore(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// CSVRecord is the finding as a row under CSVHeader; a finding's packages are joined with
// commas in each package column, as Inspector's reports join them.
func (e *FindingEncoder) CSVRecord(l findings.Listed) ([]string, error) {
	f, err := e.h.renderFinding(l)
	if err != nil {
		return nil, err
	}
	col := map[string]string{"AWS Account Id": f.AWSAccountID, "Severity": f.Severity, "Fix Available": f.FixAvailable, "Finding Type": f.Type,
		"Title": f.Title, "Description": f.Description, "Finding ARN": f.FindingARN, "First Seen": csvTime(f.FirstObservedAt),
		"Last Seen": csvTime(f.LastObservedAt), "Last Updated": csvTime(f.UpdatedAt), "Remediation": f.Remediation.Recommendation.Text,
		"Inspector Score": csvScore(f.InspectorScore), "Status": f.Status, "Exploit Available": f.ExploitAvailable}
	if f.FirstObservedAt != nil {
		col["Age (Days)"] = strconv.Itoa(int(math.Floor(time.Since(time.Time(*f.FirstObservedAt)).Hours() / 24)))
	}
	if sd := f.InspectorScoreDetails; sd != nil {
		col["Inspector Score Vector"] = sd.AdjustedCVSS.ScoringVector
	}
	if len(f.Resources) > 0 {
		r := f.Resources[0]
		img := r.Details.AWSECRContainerImage
		col["Resource ID"], col["Resource Type"], col["Region"], col["Platform"] = r.ID, r.Type, r.Region, img.Platform
		col["Container Image Tags"] = strings.Join(img.ImageTags, ",")
		if len(r.Tags) > 0 {
			b, err := json.Marshal(r.Tags)
			if err != nil {
				return nil, err
			}
			col["Resource Tags"] = string(b)
		}
	}
	p := f.PackageVulnerabilityDetails
	col["Vulnerability Id"], col["Vendor"], col["Vendor Severity"], col["Vendor Advisory"] = p.VulnerabilityID, p.Source, p.VendorSeverity, p.SourceURL
	col["Vendor Advisory Published"] = csvTime(p.VendorCreatedAt)
	col["Reference Urls"] = strings.Join(p.ReferenceURLs, ",")
	var names, versions, fixed, remediations, paths, managers []string
	for _, vp := range p.VulnerablePackages {
		names, versions, fixed = append(names, vp.Name), append(versions, vp.Version), append(fixed, vp.FixedInVersion)
		remediations, paths, managers = append(remediations, vp.Remediation), append(paths, vp.FilePath), append(managers, vp.PackageManager)
	}
	col["Affected Packages"], col["Package Installed Version"], col["Fixed in Version"] = strings.Join(names, ","), strings.Join(versions, ","), strings.Join(fixed, ",")
	col["Package Remediation"], col["File Path"], col["Package Manager"] = strings.Join(remediations, ","), strings.Join(paths, ","), strings.Join(managers, ",")
	for _, c := range p.CVSS {
		kind := "Vendor"
		if c.Source == "NVD" {
			kind = "NVD"
		}
		v := "CVSS3"
		if strings.HasPrefix(c.Version, "2") {
			v = "CVSS2"
		} else if !strings.HasPrefix(c.Version, "3") {
			continue // the report has no column for CVSS v4
		}
		if col[kind+" "+v+" Score"] == "" {
			col[kind+" "+v+" Score"], col[kind+" "+v+" Vector"] = csvScore(c.BaseScore), c.ScoringVector
		}
	}
	out := make([]string, len(csvHeader))
	for i, name := range csvHeader {
		out[i] = col[name]
	}
	return out, nil
}

// ReportFilesPath is where the files of SBOM exports and findings reports are served:
// GET /lading/reports/<bucketName>/<key>.
const ReportFilesPath = "/lading/reports/"

// ReportFiles is what downloading needs: the files jobs wrote.
type ReportFiles interface {
	File(ctx context.Context, bucket, key string) (*os.File, store.ReportJob, error)
}

// BasicAuthenticator verifies Basic credentials (an access key and its secret, or AWS and a
// registry token), as the registry does.
type BasicAuthenticator interface {
	Request(r *http.Request) (auth.Principal, error)
}

// Downloads serves report files to an authenticated caller allowed to read the job that wrote
// them: inspector2:GetSbomExport for an SBOM export's files, inspector2:GetFindingsReportStatus
// for a findings report's. Callers authenticate as on the registry (Basic) or with SigV4
// (service inspector2).
type Downloads struct {
	sig   Authenticator
	basic BasicAuthenticator
	files ReportFiles
	authz Authorizer
	sigV4 auth.SigV4Policy
}

// NewDownloads returns the download handler; authz nil allows every authenticated caller.
func NewDownloads(sig Authenticator, basic BasicAuthenticator, files ReportFiles, authz Authorizer) *Downloads {
	return &Downloads{sig: sig, basic: basic, files: files, authz: authz, sigV4: auth.RESTJSONPolicy("inspector2")}
}

func (d *Downloads) principal(r *http.Request) (auth.Principal, error) {
	if strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		if err := d.sig.CheckSigV4Header(r, d.sigV4); err != nil {
			return auth.Principal{}, err
		}
		res, err := d.sig.VerifySigV4(r, nil, d.sigV4)
		return res.Principal, err
	}
	return d.basic.Request(r)
}

func (d *Downloads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p, err := d.principal(r)
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
		http.Error(w, "too many failed attempts", http.StatusTooManyRequests)
		return
	case err != nil:
		w.Header().Set("WWW-Authenticate", `Basic realm="lading"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	ctx := auth.WithPrincipal(r.Context(), p)
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, ReportFilesPath), "/")
	f, j, err := d.files.File(ctx, bucket, key)
	if errors.Is(err, reports.ErrNotFound) {
		http.Error(w, "no such report file", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "the report file could not be read", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	action := "inspector2:GetFindingsReportStatus"
	if j.Kind == store.ReportSBOMExport {
		action = "inspector2:GetSbomExport"
	}
	if d.authz != nil {
		if err := d.authz.Authorize(ctx, p, action, "*"); err != nil {
			http.Error(w, "access denied: "+action, http.StatusForbidden)
			return
		}
	}
	ctype := "application/json"
	if strings.HasSuffix(key, ".csv") {
		ctype = "text/csv"
	}
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, "", j.UpdatedAt, f)
}

// reports is a report operation's handler, or nil (501) when the face has no report jobs.
func (h *Handler) reports(fn handlerFunc) handlerFunc {
	if h.cfg.Reports == nil {
		return nil
	}
	return fn
}
