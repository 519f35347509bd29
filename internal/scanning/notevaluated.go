package scanning

import (
	"encoding/json"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/store"
)

// DescribeNotEvaluated is the status description of a scan that could not evaluate n
// packages ("COMPLETE with 2 packages not evaluated", "ACTIVE with ..."), so that nobody reads
// the scan as clean; with n == 0, ECR's own description of the status.
func DescribeNotEvaluated(status string, n int) string {
	if n > 0 {
		return fmt.Sprintf("%s with %d packages not evaluated", status, n)
	}
	switch status {
	case StatusActive:
		return DescActive
	case StatusComplete:
		return DescComplete
	}
	return ""
}

// setNotEvaluated records on a scan what it could not evaluate, and says so in its
// description when the scan completed.
func setNotEvaluated(scan *store.ImageScan, ns []match.NotEvaluated) error {
	scan.NotEvaluated, scan.NotEvaluatedPackages = nil, 0
	if len(ns) > 0 {
		b, err := json.Marshal(ns)
		if err != nil {
			return err
		}
		scan.NotEvaluated, scan.NotEvaluatedPackages = b, match.NotEvaluatedPackages(ns)
	}
	if scan.Status == StatusComplete || scan.Status == StatusActive {
		scan.Description = DescribeNotEvaluated(scan.Status, scan.NotEvaluatedPackages)
	}
	return nil
}

// NotEvaluatedOf returns what a stored scan could not evaluate: the packages whose version
// could not be compared and the advisories that could not be evaluated. A stored list that
// does not decode is an error naming the scan, never an empty list.
func NotEvaluatedOf(scan store.ImageScan) ([]match.NotEvaluated, error) {
	if len(scan.NotEvaluated) == 0 {
		return nil, nil
	}
	var ns []match.NotEvaluated
	if err := json.Unmarshal(scan.NotEvaluated, &ns); err != nil {
		return nil, fmt.Errorf("%w: not-evaluated list of the %s scan of %s@%s: %w", ErrCorrupt, scan.ScanType, scan.Repository, scan.Digest, err)
	}
	return ns, nil
}

// metrics are the scanning service's Prometheus metrics.
type metrics struct {
	notEvaluated *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		notEvaluated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_scan_packages_not_evaluated_total",
			Help: "Packages a scan (kind=scan) or a continuous re-evaluation (kind=reevaluation) could not evaluate: a version that does not compare, or an advisory range that does not.",
		}, []string{"kind"}),
	}
	for _, k := range []string{kindScan, kindReevaluation} {
		m.notEvaluated.WithLabelValues(k)
	}
	if r != nil {
		r.MustRegister(m.notEvaluated)
	}
	return m
}

// Values of the metric's kind label.
const (
	kindScan         = "scan"
	kindReevaluation = "reevaluation"
)
