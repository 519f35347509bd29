package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

func newAdminCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Administer a Lading data directory"}
	cmd.AddCommand(newAccessKeyCommand(), newUsageCommand(), newResetSecretKeyCommand(), newGCCommand())
	return cmd
}

// openMeta opens the metadata store of a data directory, for commands that run beside (or
// without) a server.
func openMeta(ctx context.Context, dataDir string, log *slog.Logger) (*sqlite.DB, error) {
	return app.OpenMeta(ctx, dataDir, log)
}

// openKeys opens a data directory's access keys, whose secrets are encrypted with the key in
// $LADING_SECRET_KEY or the data directory's key file.
func openKeys(ctx context.Context, dataDir string) (*auth.SealedKeys, func(), error) {
	db, err := openMeta(ctx, dataDir, slog.Default())
	if err != nil {
		return nil, nil, err
	}
	keys, err := app.OpenKeys(ctx, db, dataDir, os.Getenv(auth.SecretKeyEnv), slog.Default())
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return keys, func() { _ = db.Close() }, nil
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
			keys, done, err := openKeys(cmd.Context(), dataDir)
			if err != nil {
				return err
			}
			defer done()
			k, err := auth.NewAccessKey(description)
			if err != nil {
				return err
			}
			if err := keys.CreateAccessKey(cmd.Context(), k); err != nil {
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
			keys, done, err := openKeys(cmd.Context(), dataDir)
			if err != nil {
				return err
			}
			defer done()
			list, err := keys.ListAccessKeys(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESS KEY ID\tCREATED\tDESCRIPTION")
			for _, k := range list {
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
			keys, done, err := openKeys(cmd.Context(), dataDir)
			if err != nil {
				return err
			}
			defer done()
			if err := keys.DeleteAccessKey(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func newResetSecretKeyCommand() *cobra.Command {
	var dataDir string
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset-secret-key --yes",
		Short: "After the secret key is lost: make a new one and delete the access keys only the lost one could decrypt",
		Long: "The secret key (" + auth.SecretKeyFile + " in the data directory, or $" + auth.SecretKeyEnv + ") encrypts the access keys'\n" +
			"secrets and the signing keys in the metadata database. When it is lost, Lading refuses to start. This command\n" +
			"makes a new key (unless one is given), deletes every access key the key at hand cannot decrypt, and replaces\n" +
			"the registry-token and download-URL signing keys, so that tokens and URLs issued before stop working. The\n" +
			"environment's bootstrap admin is registered again at the next start; without it, a new admin is generated\n" +
			"when no access key is left.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Run without the key by mistake (say, in a shell without $LADING_SECRET_KEY), this
			// would delete access keys that are fine: make that a deliberate act.
			if !yes {
				return errors.New("this deletes every access key the secret key at hand cannot decrypt; rerun with --yes")
			}
			db, err := openMeta(cmd.Context(), dataDir, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			return app.ResetSecretKey(cmd.Context(), db, dataDir, os.Getenv(auth.SecretKeyEnv), slog.Default())
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./lading-data", "directory holding blobs and the metadata database")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm")
	return cmd
}
