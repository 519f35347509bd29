package reports

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/sbom"
	"github.com/lading-registry/lading/internal/scanning/policy"
)

// Layout: where Inspector puts a job's files in its S3 bucket, and so where Lading puts them
// under <reports dir>/<bucket>/.
//
//   - A findings report is one object, <keyPrefix>/<reportId>.csv or .json (Amazon Inspector
//     user guide, "Exporting findings reports").
//   - An SBOM export is one object per resource, under <keyPrefix>/SBOM/<accountId>/<reportId>/
//     (the same guide, "Exporting SBOMs"): Lading names an image's file
//     <repository>/<algorithm>_<hex>.json, so that a repository's images sit together.
func findingsReportKey(d Destination, id, format string) string {
	return d.key(id + "." + strings.ToLower(format))
}

func sbomKey(d Destination, account, id, repo, dgst string) string {
	return d.key("SBOM", account, id, repo, strings.Replace(dgst, ":", "_", 1)+".json")
}

// currentScanType is the scan type whose results the registry shows.
func (s *Service) currentScanType(ctx context.Context) (string, error) {
	pol, err := s.st.ScanningPolicy(ctx)
	if err != nil {
		return "", err
	}
	if pol.ScanType == policy.ScanTypeEnhanced {
		return policy.ScanTypeEnhanced, nil
	}
	return policy.ScanTypeBasic, nil
}

// exportSBOMs writes one SBOM per scanned image the criteria select.
func (s *Service) exportSBOMs(ctx context.Context, j *job, c ResourceCriteria) error {
	scanType, err := s.currentScanType(ctx)
	if err != nil {
		return err
	}
	images, err := s.st.ScannedImages(ctx, scanType)
	if err != nil {
		return err
	}
	dest := Destination{Bucket: j.Bucket, KeyPrefix: j.KeyPrefix}
	for _, im := range images {
		if !c.matches(im, s.cfg.Account, s.cfg.Region) {
			continue
		}
		scan, err := sbom.Scan(ctx, s.st, sbom.Image{Repository: im.Repository, Digest: im.Digest, ScanType: scanType, Tags: im.Tags, WithFindings: true})
		if errors.Is(err, sbom.ErrNoInventory) {
			continue // deleted or rescanned since listed
		}
		if err != nil {
			return err
		}
		key := sbomKey(dest, s.cfg.Account, j.ID, im.Repository, im.Digest)
		if err := s.write(ctx, j, key, func(w io.Writer) error { return s.writeSBOM(w, scan, j.Format) }); err != nil {
			return err
		}
	}
	if len(j.written) == 0 {
		return &failure{code: ErrorNoFindingsFound, message: "No scanned image matches the resource filter criteria"}
	}
	return nil
}

// writeSBOM writes an image's SBOM document in format (FormatCycloneDX14 or FormatSPDX23).
func (s *Service) writeSBOM(w io.Writer, scan *report.Scan, format string) error {
	o := report.Options{ToolVersion: s.cfg.ToolVersion, RegistryID: s.cfg.Account, Region: s.cfg.Region, Now: s.cfg.Now(),
		CycloneDXVersion: cdx.SpecVersion1_4}
	if format == FormatSPDX23 {
		return report.SPDX(w, scan, o)
	}
	return report.CycloneDX(w, scan, o)
}

// ImageSBOM writes one image's SBOM in format (FormatCycloneDX14 or FormatSPDX23), the
// document an SBOM export writes for it: its packages from the current scan type's stored
// inventory, with its ACTIVE findings. sbom.ErrNoInventory when the image has none (not
// scanned yet, or its scan failed).
func (s *Service) ImageSBOM(ctx context.Context, repo, dgst, format string, w io.Writer) error {
	if format != FormatCycloneDX14 && format != FormatSPDX23 {
		return findings.Invalid(findings.ReasonFieldValidationFailed, "reportFormat", "must be one of CYCLONEDX_1_4, SPDX_2_3")
	}
	scanType, err := s.currentScanType(ctx)
	if err != nil {
		return err
	}
	scan, err := sbom.Scan(ctx, s.st, sbom.Image{Repository: repo, Digest: dgst, ScanType: scanType, WithFindings: true})
	if err != nil {
		return err
	}
	return s.writeSBOM(w, scan, format)
}

// reportPage is how many findings a findings report reads at once.
const reportPage = findings.MaxPageSize

// writeFindingsReport writes the findings the criteria select, read in pages, as one file.
func (s *Service) writeFindingsReport(ctx context.Context, j *job, c findings.Criteria) error {
	dest := Destination{Bucket: j.Bucket, KeyPrefix: j.KeyPrefix}
	n := 0
	err := s.write(ctx, j, findingsReportKey(dest, j.ID, j.Format), func(w io.Writer) error {
		var cw *csv.Writer
		if j.Format == FormatCSV {
			cw = csv.NewWriter(w)
			if err := cw.Write(s.enc.CSVHeader()); err != nil {
				return err
			}
		} else if _, err := io.WriteString(w, `{"findings":[`); err != nil {
			return err
		}
		var token *string
		size := reportPage
		for {
			page, err := s.fs.List(ctx, findings.ListInput{Op: "CreateFindingsReport", Criteria: c, MaxResults: &size, NextToken: token})
			if err != nil {
				return fmt.Errorf("list findings: %w", err)
			}
			for _, l := range page.Findings {
				if err := s.writeFinding(w, cw, l, n); err != nil {
					return err
				}
				n++
			}
			if page.NextToken == "" {
				break
			}
			next := page.NextToken
			token = &next
		}
		if n == 0 {
			return &failure{code: ErrorNoFindingsFound, message: "No finding matches the filter criteria"}
		}
		if cw != nil {
			cw.Flush()
			return cw.Error()
		}
		_, err := io.WriteString(w, "]}\n")
		return err
	})
	var f *failure
	if errors.As(err, &f) {
		return f // not wrapped in the file's name: its message is the job's
	}
	return err
}

// writeFinding writes the nth finding of a report.
func (s *Service) writeFinding(w io.Writer, cw *csv.Writer, l findings.Listed, n int) error {
	if cw != nil {
		rec, err := s.enc.CSVRecord(l)
		if err != nil {
			return err
		}
		return cw.Write(rec)
	}
	f, err := s.enc.JSONFinding(l)
	if err != nil {
		return err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if n > 0 {
		b = append([]byte{','}, b...)
	}
	_, err = w.Write(b)
	return err
}

// removeFiles removes what a cancelled job wrote.
func (s *Service) removeFiles(j *job) {
	root, err := s.root()
	if err != nil {
		return
	}
	defer root.Close()
	for _, k := range j.written {
		if err := root.Remove(path.Join(j.Bucket, k)); err != nil {
			s.cfg.Logger.Warn("remove a cancelled report's file", "report_id", j.ID, "key", k, "err", err)
		}
	}
}
