package main

import (
	"fmt"
	"log/slog"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// What scans would have cost on ECR and Inspector (USD): enhanced scans are billed by
// Inspector per image, initial scan and rescan; basic scans are free.
const (
	priceInitialEnhanced = 0.09
	priceRescanEnhanced  = 0.01
)

func newUsageCommand() *cobra.Command {
	var dataDir, metadata, since string
	cmd := &cobra.Command{
		Use:   "usage [--since DATE]",
		Short: "Show scans performed, by repository and scan type, with what they would have cost on ECR/Inspector",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from := time.Time{}
			if since != "" {
				var err error
				from, err = parseDate(since)
				if err != nil {
					return err
				}
			}
			db, err := openMeta(cmd.Context(), dataDir, metadata, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			rows, err := db.UsageSince(cmd.Context(), from)
			if err != nil {
				return err
			}
			type key struct{ repo, scanType string }
			type tally struct{ initial, rescan int }
			sums := map[key]*tally{}
			for _, u := range rows {
				k := key{u.Repository, u.ScanType}
				if sums[k] == nil {
					sums[k] = &tally{}
				}
				if u.Kind == store.UsageInitial {
					sums[k].initial++
				} else {
					sums[k].rescan++
				}
			}
			keys := make([]key, 0, len(sums))
			for k := range sums {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool {
				if keys[i].repo != keys[j].repo {
					return keys[i].repo < keys[j].repo
				}
				return keys[i].scanType < keys[j].scanType
			})
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tSCAN TYPE\tINITIAL SCANS\tRESCANS\tECR/INSPECTOR COST (USD)")
			var total float64
			var ti, tr int
			for _, k := range keys {
				t := sums[k]
				cost := 0.0
				if k.scanType == policy.ScanTypeEnhanced {
					cost = float64(t.initial)*priceInitialEnhanced + float64(t.rescan)*priceRescanEnhanced
				}
				total += cost
				ti += t.initial
				tr += t.rescan
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f\n", k.repo, k.scanType, t.initial, t.rescan, cost)
			}
			fmt.Fprintf(tw, "TOTAL\t\t%d\t%d\t%.2f\n", ti, tr, total)
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./lading-data", "directory holding blobs and the metadata database")
	cmd.Flags().StringVar(&metadata, "metadata", "", metadataUsage)
	cmd.Flags().StringVar(&since, "since", "", "count scans from this date (YYYY-MM-DD or RFC 3339)")
	return cmd
}

func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want YYYY-MM-DD or RFC 3339", s)
}
