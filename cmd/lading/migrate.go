package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/blob"
)

func newMigrateCommand() *cobra.Command {
	var common commonFlags
	var from, to string
	var verify bool
	cmd := &cobra.Command{
		Use:   "migrate --to-blobs s3://... --data-dir DIR",
		Short: "Copy a registry's blobs into other blob storage (files in the data dir to an S3 bucket)",
		Long: "Copies every committed blob from the registry's blob storage (--blobs; files in the data directory by\n" +
			"default) into --to-blobs, each checked against its digest before it is visible there. Blobs already there\n" +
			"are kept, so an interrupted run resumes and a run after the last pushes copies only what is new: run it\n" +
			"while `lading serve` runs, then once more after stopping it, and restart with --blobs set to the target.\n" +
			"Upload sessions in progress are not copied (clients restart them). The metadata stays in the data directory.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := common.logger(os.Stderr)
			if err != nil {
				return err
			}
			if to == "" {
				return errors.New("--to-blobs: give the blob storage to copy into (s3://bucket?endpoint=...&region=...)")
			}
			if to == from {
				return fmt.Errorf("--to-blobs %q: the same as the source", to)
			}
			ctx := cmd.Context()
			// The servers' locks (PostgreSQL's when the metadata is there), so that a copy
			// beside running servers excludes their commits and collections.
			locks, closeLocks, err := app.OpenBlobLocks(ctx, common.metadata)
			if err != nil {
				return err
			}
			defer closeLocks()
			src, err := app.OpenBlobs(ctx, common.dataDir, from, app.BlobOptions{Locker: locks})
			if err != nil {
				return err
			}
			dst, err := app.OpenBlobs(ctx, common.dataDir, to, app.BlobOptions{Locker: locks})
			if err != nil {
				return err
			}
			rep, err := blob.Copy(ctx, dst, src, blob.CopyOptions{Verify: verify, Progress: func(f blob.File, copied bool) {
				log.Debug("blob", "digest", f.Digest, "size", f.Size, "copied", copied)
			}})
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "blobs copied\t%d\t%s\n", rep.Copied, humanize.IBytes(uint64(rep.CopiedBytes)))
			fmt.Fprintf(tw, "blobs already there\t%d\t%s\n", rep.Present, humanize.IBytes(uint64(rep.PresentBytes)))
			if ferr := tw.Flush(); err == nil {
				err = ferr
			}
			if err != nil {
				return fmt.Errorf("migrate (run again to resume): %w", err)
			}
			return nil
		},
	}
	common.register(cmd)
	registerBlobsFlag(cmd, &from)
	cmd.Flags().StringVar(&to, "to-blobs", "", "blob storage to copy into: s3://bucket[/prefix]?endpoint=URL&region=R")
	cmd.Flags().BoolVar(&verify, "verify", false, "also re-read every blob the target already holds and check it against its digest")
	return cmd
}
