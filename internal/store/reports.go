package store

import "time"

// Report job kinds.
const (
	ReportSBOMExport     = "SBOM_EXPORT"
	ReportFindingsReport = "FINDINGS_REPORT"
)

// ReportJob is an SBOM export or a findings report (Inspector's), run in the background.
type ReportJob struct {
	ID           string
	Kind         string
	Format       string
	Status       string
	ErrorCode    string
	ErrorMessage string
	Bucket       string
	KeyPrefix    string
	KMSKeyARN    string
	// Criteria is the request's filter criteria as JSON ("" when none), echoed back by the Get
	// operations.
	Criteria string
	// Files are the keys, under Bucket, of the files the job wrote.
	Files     []string
	Owner     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// InventoriedImage is an image with a stored inventory, for SBOM exports.
type InventoriedImage struct {
	Repository  string
	Digest      string
	Tags        []string
	PushedAt    time.Time
	InventoryID int64
}
