package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lading-registry/lading/internal/vulndb"
)

func newDBCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Manage the advisory database (OSV)"}
	cmd.AddCommand(newDBImportCommand(), newDBUpdateCommand(), newDBStatusCommand(), newDBQueryCommand())
	return cmd
}

// openVulnDB opens the advisory database of a data directory, with progress drawn on a
// terminal and logged otherwise.
func openVulnDB(cmd *cobra.Command, common *commonFlags, skipInvalid bool) (*vulndb.DB, func(), error) {
	log, err := common.logger(os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	meta, err := openMeta(cmd.Context(), common.dataDir, common.metadata, log)
	if err != nil {
		return nil, nil, err
	}
	var progress vulndb.Progress
	if term.IsTerminal(int(os.Stderr.Fd())) {
		progress = vulndb.TextProgress(os.Stderr)
	} else {
		progress = vulndb.LogProgress(log, 5*time.Second)
	}
	db := vulndb.New(meta, vulndb.Options{Logger: log, Progress: progress, CacheDir: common.dataDir + "/vulndb-cache", SkipInvalid: skipInvalid})
	return db, func() { _ = meta.Close() }, nil
}

func printResult(cmd *cobra.Command, verb string, res *vulndb.Result) error {
	if !res.Changed {
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: no change; database version %d\n", verb, res.Version)
		return err
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: database version %d (was %d): %d added, %d changed, %d withdrawn, %d deleted, %d packages affected, in %s\n",
		verb, res.Version, res.Previous, res.Added, res.BatchStats.Changed, res.Withdrawn, res.Deleted, len(res.Keys), res.Elapsed.Round(time.Millisecond))
	return err
}

func newDBImportCommand() *cobra.Command {
	var common commonFlags
	var skipInvalid bool
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Import OSV advisories from all.zip files, folders in OSV's bucket layout, or folders of OSV JSON records",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, done, err := openVulnDB(cmd, &common, skipInvalid)
			if err != nil {
				return err
			}
			defer done()
			res, err := db.Import(cmd.Context(), args...)
			if err != nil {
				return fmt.Errorf("import failed, the database is unchanged: %w", err)
			}
			return printResult(cmd, "import", res)
		},
	}
	common.register(cmd)
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "skip records that fail to parse instead of failing the import")
	return cmd
}

func newDBUpdateCommand() *cobra.Command {
	var common commonFlags
	var source string
	var ecosystems []string
	var skipInvalid bool
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Sync advisories from a mirror in OSV's bucket layout (HTTP(S) URL or folder)",
		Long: "Sync advisories from a mirror in OSV's bucket layout. When the mirror has <Ecosystem>/modified_id.csv, only\n" +
			"changed records are fetched; otherwise <Ecosystem>/all.zip is downloaded (an interrupted download resumes).\n" +
			"A failed or interrupted update leaves the previous database version in place.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, done, err := openVulnDB(cmd, &common, skipInvalid)
			if err != nil {
				return err
			}
			defer done()
			res, err := db.Update(cmd.Context(), source, ecosystems)
			if err != nil {
				return fmt.Errorf("update failed, the database is unchanged: %w", err)
			}
			return printResult(cmd, "update", res)
		},
	}
	common.register(cmd)
	cmd.Flags().StringVar(&source, "source", vulndb.DefaultSource, "mirror URL or folder")
	cmd.Flags().StringSliceVar(&ecosystems, "ecosystems", nil, "ecosystems to sync (default: every ecosystem the mirror lists, or the default set)")
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "skip records that fail to parse instead of failing the update")
	return cmd
}

func newDBStatusCommand() *cobra.Command {
	var common commonFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the database version and, per ecosystem, the record count and newest modified time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, done, err := openVulnDB(cmd, &common, false)
			if err != nil {
				return err
			}
			defer done()
			st, err := db.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "version %d", st.Version)
			if !st.UpdatedAt.IsZero() {
				fmt.Fprintf(w, ", updated %s by %s of %s", st.UpdatedAt.UTC().Format(time.RFC3339), st.LastKind, st.LastSource)
			}
			fmt.Fprintf(w, "\n%d records (%d withdrawn)\n\n", st.Records, st.Withdrawn)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS\tWITHDRAWN\tNEWEST MODIFIED")
			for _, e := range st.Ecosystems {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", e.Ecosystem, e.Records, e.Withdrawn, e.NewestModified.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	common.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDBQueryCommand() *cobra.Command {
	var common commonFlags
	var ecosystem, pkg, version string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "query --ecosystem E --package P --version V",
		Short: "List the advisories affecting one package version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, done, err := openVulnDB(cmd, &common, false)
			if err != nil {
				return err
			}
			defer done()
			vs, err := db.Query(cmd.Context(), ecosystem, pkg, version)
			if err != nil && len(vs) == 0 {
				return err
			}
			if err != nil {
				slog.Warn("partial answer", "err", err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(vs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VULNERABILITY\tSEVERITY\tCVSS\tFIXED IN\tADVISORIES")
			for _, v := range vs {
				score := "-"
				if v.CVSSScore != nil {
					score = fmt.Sprintf("%.1f", *v.CVSSScore)
				}
				fixed := strings.Join(v.FixedVersions, ", ")
				if fixed == "" {
					fixed = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.VulnerabilityID, v.Severity, score, fixed, strings.Join(v.AdvisoryIDs, ", "))
			}
			return tw.Flush()
		},
	}
	common.register(cmd)
	cmd.Flags().StringVar(&ecosystem, "ecosystem", "", "OSV ecosystem, e.g. Maven, npm, Debian:12")
	cmd.Flags().StringVar(&pkg, "package", "", "package name as OSV names it (Maven group:artifact, Go module path, Debian source package)")
	cmd.Flags().StringVar(&version, "version", "", "installed version")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	for _, f := range []string{"ecosystem", "package", "version"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}
