package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/auth"
)

func newAdminCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Administer a Lading data directory"}
	cmd.AddCommand(newAccessKeyCommand(), newUsageCommand(), newResetSecretKeyCommand(), newGCCommand(), newPullGateCommand(), newMigrateCommand())
	return cmd
}

// openMeta opens the metadata store of a data directory, for commands that run beside (or
// without) a server.
func openMeta(ctx context.Context, dataDir, metadata string, log *slog.Logger) (app.Meta, error) {
	return app.OpenMeta(ctx, dataDir, metadata, log)
}

// openKeys opens a data directory's access keys, whose secrets are encrypted with the key in
// $LADING_SECRET_KEY or the data directory's key file.
func openKeys(ctx context.Context, dataDir, metadata string) (*auth.SealedKeys, func(), error) {
	db, err := openMeta(ctx, dataDir, metadata, slog.Default())
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
	var dataDir, metadata string
	cmd := &cobra.Command{Use: "access-key", Short: "Create, list, change and delete access keys"}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "./lading-data", "directory holding blobs and the metadata database")
	cmd.PersistentFlags().StringVar(&metadata, "metadata", "", metadataUsage)

	var description, name string
	var asJSON bool
	var pol policyFlags
	create := &cobra.Command{
		Use:   "create --name NAME (--preset PRESET | --policy FILE)",
		Short: "Create an access key and print it (the secret is shown only here)",
		Long: "Create an access key with a name (its IAM user name, arn:aws:iam::<registry id>:user/<name>, which repository\n" +
			"and registry policies name) and a policy: a preset named after AWS's managed policies, or an IAM policy\n" +
			"document (Version, Statement with Sid, Effect, Action/NotAction, Resource/NotResource; no Condition).\n" +
			"Presets: " + strings.Join(auth.PresetNames(), ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			preset, policy, err := pol.read()
			if err != nil {
				return err
			}
			if name != "" && !auth.ValidKeyName(name) {
				return fmt.Errorf("--name %q: want 1 to 64 letters, digits and +=,.@_- (an IAM user name)", name)
			}
			keys, done, err := openKeys(cmd.Context(), dataDir, metadata)
			if err != nil {
				return err
			}
			defer done()
			k, err := auth.NewAccessKey(description)
			if err != nil {
				return err
			}
			k.Name, k.Preset, k.Policy = name, preset, policy
			if k.Name == "" {
				k.Name = k.ID
			}
			if err := keys.CreateAccessKey(cmd.Context(), k); err != nil {
				return fmt.Errorf("create access key %s: %w", k.Name, err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"accessKeyId": k.ID, "secretAccessKey": k.Secret})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "AccessKeyId: %s\nSecretAccessKey: %s\nName: %s\n", k.ID, k.Secret, k.Name)
			return err
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the key is for")
	create.Flags().StringVar(&name, "name", "", "the key's name (default: its id)")
	create.Flags().BoolVar(&asJSON, "json", false, `print {"accessKeyId": ..., "secretAccessKey": ...}`)
	pol.register(create)

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List access keys with their names and policies (without secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, done, err := openKeys(cmd.Context(), dataDir, metadata)
			if err != nil {
				return err
			}
			defer done()
			list, err := keys.ListAccessKeys(cmd.Context())
			if err != nil {
				return err
			}
			if listJSON {
				type entry struct {
					AccessKeyID string          `json:"accessKeyId"`
					Name        string          `json:"name"`
					Description string          `json:"description"`
					CreatedAt   time.Time       `json:"createdAt"`
					Preset      string          `json:"preset,omitempty"`
					Policy      json.RawMessage `json:"policy,omitempty"`
				}
				out := make([]entry, 0, len(list))
				for _, k := range list {
					e := entry{AccessKeyID: k.ID, Name: k.Name, Description: k.Description, CreatedAt: k.CreatedAt, Preset: k.Preset}
					if k.Preset == "" && json.Valid([]byte(k.Policy)) {
						e.Policy = json.RawMessage(k.Policy)
					}
					out = append(out, e)
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESS KEY ID\tNAME\tPOLICY\tCREATED\tDESCRIPTION")
			for _, k := range list {
				policy := k.Preset
				if policy == "" {
					policy = "custom"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, policy, k.CreatedAt.Format("2006-01-02T15:04:05Z"), k.Description)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print the keys as JSON, custom policies in full")

	var setPol policyFlags
	setPolicy := &cobra.Command{
		Use:   "set-policy ACCESS_KEY_ID|NAME (--preset PRESET | --policy FILE)",
		Short: "Replace an access key's policy; requests are decided under it at once, registry tokens included",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			preset, policy, err := setPol.read()
			if err != nil {
				return err
			}
			keys, done, err := openKeys(cmd.Context(), dataDir, metadata)
			if err != nil {
				return err
			}
			defer done()
			id, err := findKey(cmd.Context(), keys, args[0])
			if err != nil {
				return err
			}
			return keys.UpdateAccessKeyPolicy(cmd.Context(), id, preset, policy)
		},
	}
	setPol.register(setPolicy)

	del := &cobra.Command{
		Use:   "delete ACCESS_KEY_ID|NAME",
		Short: "Delete an access key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, done, err := openKeys(cmd.Context(), dataDir, metadata)
			if err != nil {
				return err
			}
			defer done()
			id, err := findKey(cmd.Context(), keys, args[0])
			if err != nil {
				return err
			}
			if err := keys.DeleteAccessKey(cmd.Context(), id); err != nil {
				return fmt.Errorf("delete %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.AddCommand(create, list, setPolicy, del)
	return cmd
}

// policyFlags are --preset and --policy, one of which gives a key its policy.
type policyFlags struct {
	preset, file string
}

func (f *policyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.preset, "preset", "", "a preset policy: "+strings.Join(auth.PresetNames(), ", "))
	cmd.Flags().StringVar(&f.file, "policy", "", "an IAM policy document (JSON file; - for standard input)")
}

// read returns the preset's name, or the policy document checked, as a key stores them.
func (f *policyFlags) read() (preset, policy string, err error) {
	switch {
	case f.preset != "" && f.file != "":
		return "", "", errors.New("give --preset or --policy, not both")
	case f.preset != "":
		if _, ok := auth.PresetDocument(f.preset); !ok {
			return "", "", fmt.Errorf("--preset %q: want one of %s", f.preset, strings.Join(auth.PresetNames(), ", "))
		}
		return f.preset, "", nil
	case f.file != "":
		var b []byte
		if f.file == "-" {
			b, err = io.ReadAll(io.LimitReader(os.Stdin, auth.MaxPolicySize+1))
		} else {
			b, err = os.ReadFile(f.file)
		}
		if err != nil {
			return "", "", fmt.Errorf("--policy: %w", err)
		}
		doc := strings.TrimSpace(string(b))
		if _, err := auth.ParseIdentityPolicy(doc); err != nil {
			return "", "", fmt.Errorf("--policy %s: %w", f.file, err)
		}
		return "", doc, nil
	}
	// A key without a policy could do nothing: say so rather than make one.
	return "", "", fmt.Errorf("give the key a policy: --preset (%s) or --policy FILE", strings.Join(auth.PresetNames(), ", "))
}

// findKey returns the id of the key with this id or name.
func findKey(ctx context.Context, keys *auth.SealedKeys, idOrName string) (string, error) {
	all, err := keys.ListAccessKeys(ctx)
	if err != nil {
		return "", err
	}
	for _, k := range all {
		if k.ID == idOrName || k.Name == idOrName {
			return k.ID, nil
		}
	}
	return "", fmt.Errorf("no access key has the id or name %q", idOrName)
}

func newResetSecretKeyCommand() *cobra.Command {
	var dataDir, metadata string
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
			db, err := openMeta(cmd.Context(), dataDir, metadata, slog.Default())
			if err != nil {
				return err
			}
			defer db.Close()
			return app.ResetSecretKey(cmd.Context(), db, dataDir, os.Getenv(auth.SecretKeyEnv), slog.Default())
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./lading-data", "directory holding blobs and the metadata database")
	cmd.Flags().StringVar(&metadata, "metadata", "", metadataUsage)
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm")
	return cmd
}
