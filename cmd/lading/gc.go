package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/gc"
)

func newGCCommand() *cobra.Command {
	var common commonFlags
	var o gc.Options
	var blobs string
	cmd := &cobra.Command{
		Use:   "gc [--dry-run] [--grace 1h] --data-dir DIR",
		Short: "Remove blobs, links, cached inventories and upload sessions no image needs",
		Long: "Removes the blob links no manifest of their repository references, the blob files no link or manifest names,\n" +
			"the cached inventories of layers and images that are gone, and abandoned upload sessions, sparing what is\n" +
			"younger than --grace (a push between its layer uploads and its manifest). Safe while `lading serve` runs on\n" +
			"the same data directory.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := common.logger(os.Stderr)
			if err != nil {
				return err
			}
			o.Logger = log
			if o.Grace < 0 {
				return fmt.Errorf("--grace %s: must not be negative", o.Grace)
			}
			rep, err := app.CollectGarbage(cmd.Context(), common.dataDir, common.metadata, blobs, o)
			if err != nil {
				return err
			}
			return printGCReport(cmd, rep)
		},
	}
	common.register(cmd)
	registerBlobsFlag(cmd, &blobs)
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "report what would be removed, removing nothing")
	cmd.Flags().DurationVar(&o.Grace, "grace", gc.DefaultGrace, "spare links and blobs younger than this (a push in progress); 0 only when nothing pushes")
	cmd.Flags().DurationVar(&o.UploadTTL, "upload-ttl", 24*time.Hour, "remove upload sessions idle this long")
	return cmd
}

func printGCReport(cmd *cobra.Command, r gc.Report) error {
	verb := "freed"
	if r.DryRun {
		verb = "would free"
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "blobs\t%d\t%s\n", r.Blobs, humanize.IBytes(uint64(r.BlobBytes)))
	fmt.Fprintf(tw, "blob links\t%d\t\n", r.LinksRemoved)
	fmt.Fprintf(tw, "layer inventories\t%d\t\n", r.LayerInventories)
	fmt.Fprintf(tw, "image inventories\t%d\t%s\n", r.ImageInventories, humanize.IBytes(uint64(r.InventoryBytes)))
	fmt.Fprintf(tw, "finding package sets\t%d\t\n", r.PackageSets)
	fmt.Fprintf(tw, "upload sessions\t%d\t%s\n", r.Uploads, humanize.IBytes(uint64(r.UploadBytes)))
	fmt.Fprintf(tw, "total %s\t\t%s\n", verb, humanize.IBytes(uint64(r.BlobBytes+r.InventoryBytes+r.UploadBytes)))
	return tw.Flush()
}
