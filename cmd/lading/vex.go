package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/kev"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/suppression"
	"github.com/lading-registry/lading/internal/triage"
)

func newVEXCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "vex", Short: "Turn VEX documents into suppression rules"}
	var dataDir, metadata, registryID, region string
	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Make suppression rules of VEX statements (OpenVEX 0.2, CycloneDX VEX)",
		Long: "Read VEX documents (OpenVEX 0.2 JSON, CycloneDX JSON with vulnerabilities and analyses; the parser of\n" +
			"`lading scan --vex`) and make a suppression rule (action SUPPRESS, as Inspector's CreateFilter) of every\n" +
			"not_affected or fixed statement about an image or a repository of the registry, the statement's\n" +
			"justification as its reason: products are OCI purls (pkg:oci/<name>@sha256%3A<hex>?repository_url=<host>/<repo>,\n" +
			"or without a version for a whole repository), pkg:docker purls with a digest, digests, or <repo>@sha256:<hex>\n" +
			"references; subcomponents " +
			"(package purls) limit a rule to those packages. A later affected or under_investigation statement removes the\n" +
			"rule. Rules are named vex-<hash of vulnerability and product>: importing a document again updates them.\n" +
			"Works on the data directory, beside a running server; --registry-id and --region must be the server's.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all triage.VEX
			for _, path := range args {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				v, err := triage.ParseVEX(path, b)
				if err != nil {
					return err
				}
				all.Merge(v)
			}
			db, err := openMeta(cmd.Context(), dataDir, metadata, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			cat, err := kev.Embedded()
			if err != nil {
				return err
			}
			db.SetFindingContext(sqlite.FindingContext{Account: registryID, Region: region, Exploited: cat.IDs()})
			origin := events.Origin{Account: registryID, Region: region}
			rules := suppression.NewService(db, registryID, region, scanning.AnnounceListed(origin), nil)
			rep, err := rules.ImportVEX(cmd.Context(), all.Statements())
			out := cmd.OutOrStdout()
			for _, l := range []struct {
				what  string
				lines []string
			}{{"created", rep.Created}, {"updated", rep.Updated}, {"deleted", rep.Deleted}, {"skipped", rep.Skipped}} {
				for _, line := range l.lines {
					if _, werr := fmt.Fprintf(out, "%s\t%s\n", l.what, line); werr != nil {
						return werr
					}
				}
			}
			if err != nil {
				return fmt.Errorf("vex import: %w", err)
			}
			return nil
		},
	}
	imp.Flags().StringVar(&dataDir, "data-dir", "./lading-data", "directory holding blobs and the metadata database")
	imp.Flags().StringVar(&metadata, "metadata", "", metadataUsage)
	imp.Flags().StringVar(&registryID, "registry-id", "000000000000", "the server's --registry-id (rule ARNs, finding criteria)")
	imp.Flags().StringVar(&region, "region", "us-east-1", "the server's --region")
	cmd.AddCommand(imp)
	return cmd
}
