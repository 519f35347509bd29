package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/lading-registry/lading/internal/match"
)

// Table writes a summary line, the findings one row per vulnerable package, and what the scan
// skipped or read in part.
func Table(w io.Writer, s *Scan) error {
	osName := "unknown"
	if s.Inventory.OS != nil {
		osName = s.Inventory.OS.PrettyName
	}
	fmt.Fprintf(w, "%s (%s), %s, %d packages, %d findings\n", s.Image.Name, s.Image.ManifestDigest, osName, len(s.Inventory.Packages), len(s.Findings))
	if counts := match.Counts(s.Findings); len(counts) > 0 {
		var parts []string
		for _, sev := range match.Severities() {
			if counts[sev] > 0 {
				parts = append(parts, fmt.Sprintf("%s: %d", sev, counts[sev]))
			}
		}
		fmt.Fprintln(w, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VULNERABILITY\tSEVERITY\tSCORE\tPACKAGE\tINSTALLED\tFIXED IN\tPATH\tLAYER\tCREATED BY")
	for _, f := range s.Findings {
		score := "-"
		if f.Score != nil {
			score = match.FormatScore(*f.Score)
		}
		for _, p := range f.Packages {
			fixed := p.FixedInVersion
			if fixed == "" {
				fixed = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.VulnerabilityID, f.Severity, score, p.Name, p.Version, fixed,
				p.FilePath, shortDigest(p.Layer), truncate(p.CreatedBy, 60))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Inventory.Skipped) > 0 {
		fmt.Fprintf(w, "\n%d entries skipped or read in part:\n", len(s.Inventory.Skipped))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATH\tLAYER\tREASON")
		for _, sk := range s.Inventory.Skipped {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", truncate(sk.Path, 100), shortDigest(sk.Layer), sk.Reason)
		}
		return tw.Flush()
	}
	return nil
}

func shortDigest(d string) string {
	if i := strings.Index(d, ":"); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
