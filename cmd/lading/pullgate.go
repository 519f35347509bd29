package main

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/registry"
)

// newPullGateCommand sets per-repository overrides of the pull-time policy gate, in the data
// directory (safe beside a running server, which reads the override at each pull).
func newPullGateCommand() *cobra.Command {
	var dataDir, metadata string
	cmd := &cobra.Command{Use: "pull-gate", Short: "Set, list and delete repositories' pull-time policy gates"}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "./lading-data", "directory holding blobs and the metadata database")
	cmd.PersistentFlags().StringVar(&metadata, "metadata", "", metadataUsage)

	var repo string
	var p pullgate.Policy
	set := &cobra.Command{
		Use:   "set --repository NAME --severity SEVERITY [--grace DURATION] [--exempt IDENTITY]...",
		Short: "Refuse pulls of a repository's images with ACTIVE, unsuppressed findings at or above a severity",
		Long: "Override the registry's pull gate (lading serve --pull-gate-*) for one repository: a manifest GET or HEAD of an\n" +
			"image with ACTIVE, unsuppressed findings at or above --severity, first observed more than --grace ago, is\n" +
			"refused (403 DENIED naming the findings), unless the caller is one of --exempt (access key name, access key id\n" +
			"or arn:aws:iam::<registry id>:user/<name>). --severity NONE turns the registry's gate off for the repository.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !registry.ValidRepositoryName(repo) {
				return fmt.Errorf("--repository %q: not a repository name", repo)
			}
			p.Severity = strings.ToUpper(p.Severity)
			if p.Severity == "" {
				return fmt.Errorf("--severity is required")
			}
			if err := p.Validate(); err != nil {
				return err
			}
			db, err := openMeta(cmd.Context(), dataDir, metadata, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			return db.SetRepositoryPullGate(cmd.Context(), repo, p)
		},
	}
	set.Flags().StringVar(&repo, "repository", "", "the repository")
	set.Flags().StringVar(&p.Severity, "severity", "", "INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL, or NONE (no gate)")
	set.Flags().DurationVar(&p.Grace, "grace", 0, "count only findings first observed more than this long ago")
	set.Flags().StringArrayVar(&p.Exempt, "exempt", nil, "an identity let through (repeatable)")

	var delRepo string
	del := &cobra.Command{
		Use:   "delete --repository NAME",
		Short: "Remove a repository's override: the registry's gate applies again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openMeta(cmd.Context(), dataDir, metadata, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			found, err := db.DeleteRepositoryPullGate(cmd.Context(), delRepo)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("repository %q has no pull gate of its own", delRepo)
			}
			return nil
		},
	}
	del.Flags().StringVar(&delRepo, "repository", "", "the repository")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the repositories' overrides",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openMeta(cmd.Context(), dataDir, metadata, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			gates, err := db.RepositoryPullGates(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tSEVERITY\tGRACE\tEXEMPT")
			for _, r := range slices.Sorted(maps.Keys(gates)) {
				g := gates[r]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r, g.Severity, g.Grace, strings.Join(g.Exempt, ","))
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(set, del, list)
	return cmd
}
