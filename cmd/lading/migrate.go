package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/store/metamigrate"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

func newMigrateCommand() *cobra.Command {
	var common commonFlags
	var from, to, toMeta string
	var verify bool
	var batchRows int
	cmd := &cobra.Command{
		Use:   "migrate [--to-metadata postgres://...] [--to-blobs s3://...] --data-dir DIR",
		Short: "Copy a registry's metadata into PostgreSQL and its blobs into other blob storage (an S3 bucket)",
		Long: "Copies every committed blob from the registry's blob storage (--blobs; files in the data directory by\n" +
			"default) into --to-blobs, each checked against its digest before it is visible there. Blobs already there\n" +
			"are kept, so an interrupted run resumes and a run after the last pushes copies only what is new: run it\n" +
			"while `lading serve` runs, then once more after stopping it, and restart with --blobs set to the target.\n" +
			"Upload sessions in progress are not copied (clients restart them).\n\n" +
			"--to-metadata copies the embedded SQLite metadata into a PostgreSQL database that is empty or that an\n" +
			"interrupted run of this registry left (it resumes; another registry's database is refused), reading the\n" +
			"source in one snapshot: stop `lading serve` first, as rows written after the snapshot are not copied.\n" +
			"Each table goes over in key order in transactions of --batch-rows rows; a rerun resumes after the last.\n" +
			"The source is only read.\n" +
			"Sealed secrets are copied sealed: start the nodes with the same LADING_SECRET_KEY (or key file).\n" +
			"--verify compares every table's row count and checksum with the source's.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := common.logger(os.Stderr)
			if err != nil {
				return err
			}
			if to == "" && toMeta == "" {
				return errors.New("give --to-metadata (postgres://user@host/db) and/or --to-blobs (s3://bucket?endpoint=URL&region=R)")
			}
			if to != "" && to == from {
				return fmt.Errorf("--to-blobs %q: the same as the source", to)
			}
			ctx := cmd.Context()
			if toMeta != "" {
				if err := migrateMetadata(cmd, common, toMeta, verify, batchRows, log); err != nil {
					return err
				}
				if to == "" {
					return nil
				}
			}
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
	cmd.Flags().StringVar(&toMeta, "to-metadata", "", "PostgreSQL database to copy the embedded metadata into: postgres://user@host:port/db")
	cmd.Flags().StringVar(&to, "to-blobs", "", "blob storage to copy into: s3://bucket[/prefix]?endpoint=URL&region=R")
	cmd.Flags().IntVar(&batchRows, "batch-rows", metamigrate.DefaultBatchRows, "rows of a table copied into PostgreSQL per transaction (an interrupted run resumes after the last one)")
	cmd.Flags().BoolVar(&verify, "verify", false, "also re-read every blob the target already holds and check it against its digest; compare every copied table's rows with the source's")
	return cmd
}

// migrateMetadata copies the SQLite store in the data directory into the PostgreSQL store toMeta.
func migrateMetadata(cmd *cobra.Command, common commonFlags, toMeta string, verify bool, batchRows int, log *slog.Logger) error {
	ctx := cmd.Context()
	if common.metadata != "" {
		return fmt.Errorf("--to-metadata copies the embedded SQLite metadata of --data-dir; --metadata %q is not it", common.metadata)
	}
	if !strings.HasPrefix(toMeta, "postgres://") && !strings.HasPrefix(toMeta, "postgresql://") {
		return errors.New("--to-metadata: want postgres://user@host:port/database")
	}
	// Opening would make an empty store where there is none, and copy that.
	if _, err := os.Stat(filepath.Join(common.dataDir, app.MetaFile)); err != nil {
		return fmt.Errorf("--to-metadata: no embedded metadata to copy in --data-dir %s: %w", common.dataDir, err)
	}
	// Read-only when its schema is current (one query_only connection): a migration reads its
	// source and writes nothing there; an older store is migrated first, as every command does.
	srcMeta, err := app.OpenMetaReader(ctx, common.dataDir, "", log)
	if err != nil {
		return err
	}
	defer srcMeta.Close()
	src, ok := srcMeta.(*sqlite.DB)
	if !ok {
		return fmt.Errorf("source metadata: a %T, not SQLite", srcMeta)
	}
	dstMeta, err := app.OpenMeta(ctx, common.dataDir, toMeta, log)
	if err != nil {
		return err
	}
	defer dstMeta.Close()
	dst, ok := dstMeta.(*postgres.DB)
	if !ok {
		return fmt.Errorf("target metadata: a %T, not PostgreSQL", dstMeta)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TABLE\tSOURCE ROWS\tCOPIED\tVERIFIED\n")
	_, err = metamigrate.Copy(ctx, src, dst.Pool(), metamigrate.Options{Verify: verify, BatchRows: batchRows, AfterBatch: func(table string, n int64) error {
		log.Debug("batch copied", "table", table, "rows", n)
		return nil
	}, Progress: func(r metamigrate.TableReport) {
		v := "-"
		if r.Verified {
			v = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Table, r.Source, r.Copied, v)
	}})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("migrate metadata (run again to resume): %w", err)
	}
	return nil
}
