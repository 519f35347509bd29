package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
)

// Table writes a summary line, the findings one row per vulnerable package, what the scan could
// not evaluate, the findings VEX statements suppressed, and what the scan skipped or read in
// part.
func Table(w io.Writer, s *Scan) error {
	osName := "unknown"
	if s.Inventory.OS != nil {
		osName = s.Inventory.OS.PrettyName
	}
	summary := fmt.Sprintf("%s (%s), %s, %d packages, %d findings", s.Image.Name, s.Image.ManifestDigest, osName, len(s.Inventory.Packages), len(s.Findings))
	if n := match.NotEvaluatedPackages(s.NotEvaluated); n > 0 {
		summary += fmt.Sprintf(", %d packages not evaluated", n)
	}
	if len(s.Suppressed) > 0 {
		summary += fmt.Sprintf(", %d suppressed", len(s.Suppressed))
	}
	if s.Ignored > 0 {
		summary += fmt.Sprintf(", %d ignored", s.Ignored)
	}
	if s.Unreachable > 0 {
		summary += fmt.Sprintf(", %d unreachable hidden", s.Unreachable)
	}
	fmt.Fprintln(w, summary)
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
	// REACHABILITY only when some finding has a Go package: the only ones that have one.
	reach := slices.ContainsFunc(s.Findings, func(f match.Finding) bool { return f.Reachability() != "" })
	if reach {
		fmt.Fprintln(tw, "VULNERABILITY\tSEVERITY\tSCORE\tPACKAGE\tINSTALLED\tFIXED IN\tREACHABILITY\tPATH\tLAYER\tCREATED BY")
	} else {
		fmt.Fprintln(tw, "VULNERABILITY\tSEVERITY\tSCORE\tPACKAGE\tINSTALLED\tFIXED IN\tPATH\tLAYER\tCREATED BY")
	}
	for _, f := range s.Findings {
		score := "-"
		if f.Score != nil {
			score = match.FormatScore(*f.Score)
		}
		for _, p := range f.Packages {
			fixed := orDash(p.FixedInVersion)
			if reach {
				fixed += "\t" + orDash(p.Reachability)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.VulnerabilityID, f.Severity, score, p.Label(), p.InstalledVersion(),
				fixed, p.FilePath, shortDigest(p.Layer), truncate(p.CreatedBy, 60))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.NotEvaluated) > 0 {
		fmt.Fprintf(w, "\n%d packages not evaluated (the scan cannot say they are unaffected):\n", match.NotEvaluatedPackages(s.NotEvaluated))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PACKAGE\tINSTALLED\tECOSYSTEM\tADVISORY\tPATH\tREASON")
		for _, n := range s.NotEvaluated {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Package, n.Version, n.Ecosystem, orDash(n.AdvisoryID), n.FilePath, truncate(n.Reason, 160))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(s.Suppressed) > 0 {
		fmt.Fprintf(w, "\n%d suppressed by VEX statements:\n", len(s.Suppressed))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VULNERABILITY\tSEVERITY\tPACKAGE\tINSTALLED\tSTATUS\tJUSTIFICATION")
		for _, sp := range s.Suppressed {
			for _, p := range sp.Finding.Packages {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sp.Finding.VulnerabilityID, sp.Finding.Severity, p.Name, p.InstalledVersion(), sp.Status,
					truncate(sp.Justification, 160))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return skippedTable(w, s.Inventory.Skipped)
}

// skippedTable lists the skipped entries, those of one kind (the same reason) on one line: an
// image with a /dev full of device nodes says so once.
func skippedTable(w io.Writer, skipped []inventory.Skipped) error {
	if len(skipped) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\n%d entries skipped or read in part:\n", len(skipped))
	var reasons []string
	byReason := map[string][]inventory.Skipped{}
	for _, sk := range skipped {
		if byReason[sk.Reason] == nil {
			reasons = append(reasons, sk.Reason)
		}
		byReason[sk.Reason] = append(byReason[sk.Reason], sk)
	}
	var singles []inventory.Skipped
	for _, r := range reasons {
		group := byReason[r]
		if len(group) == 1 {
			singles = append(singles, group[0])
			continue
		}
		fmt.Fprintln(w, groupLine(r, group))
	}
	if len(singles) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tLAYER\tREASON")
	for _, sk := range singles {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", truncate(sk.Path, 100), shortDigest(sk.Layer), sk.Reason)
	}
	return tw.Flush()
}

// maxGroupPaths bounds the paths a grouped line names.
const maxGroupPaths = 10

// groupLine is "8 device nodes skipped: /dev/a, /dev/b, ..." for entries skipped for one
// reason: a reason "<kind>: not read" names the kind, any other is given whole.
func groupLine(reason string, group []inventory.Skipped) string {
	paths := make([]string, 0, min(len(group), maxGroupPaths))
	for _, sk := range group[:min(len(group), maxGroupPaths)] {
		paths = append(paths, truncate(sk.Path, 100))
	}
	list := strings.Join(paths, ", ")
	if len(group) > maxGroupPaths {
		list += fmt.Sprintf(", and %d more", len(group)-maxGroupPaths)
	}
	if kind, ok := strings.CutSuffix(reason, ": not read"); ok && !strings.ContainsAny(kind, ":%\"") && len(kind) < 40 {
		return fmt.Sprintf("%d %ss skipped: %s", len(group), kind, list)
	}
	return fmt.Sprintf("%d entries skipped (%s): %s", len(group), reason, list)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
