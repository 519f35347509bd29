package main

import (
	"context"
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

func newAdminCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Administer a Lading data directory"}
	cmd.AddCommand(newAccessKeyCommand(), newUsageCommand())
	return cmd
}

// openMeta opens the metadata store of a data directory, for commands that run beside (or
// without) a server.
func openMeta(ctx context.Context, dataDir string, log *slog.Logger) (*sqlite.DB, error) {
	return app.OpenMeta(ctx, dataDir, log)
}

func newAccessKeyCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{Use: "access-key", Short: "Create, list and delete access keys"}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "./lading-data", "directory holding blobs and the metadata database")

	var description string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an access key and print it (the secret is shown only here)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openMeta(cmd.Context(), dataDir, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			k, err := auth.NewAccessKey(description)
			if err != nil {
				return err
			}
			if err := db.CreateAccessKey(cmd.Context(), k); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "AccessKeyId: %s\nSecretAccessKey: %s\n", k.ID, k.Secret)
			return err
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the key is for")

	list := &cobra.Command{
		Use:   "list",
		Short: "List access keys (without secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openMeta(cmd.Context(), dataDir, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := db.ListAccessKeys(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESS KEY ID\tCREATED\tDESCRIPTION")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.CreatedAt.Format("2006-01-02T15:04:05Z"), k.Description)
			}
			return tw.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete ACCESS_KEY_ID",
		Short: "Delete an access key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := openMeta(cmd.Context(), dataDir, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.DeleteAccessKey(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
