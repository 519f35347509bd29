// Command lading is a self-hosted container registry with built-in vulnerability scanning,
// speaking the OCI distribution API and Amazon ECR's control API.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	// First of all initialisers: the heap profiler off (see the package).
	_ "github.com/lading-registry/lading/internal/memprofileoff"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			if exit.err != nil {
				fmt.Fprintln(os.Stderr, "lading:", exit.err)
			}
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "lading:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a given status, printing err when there is one (without,
// the command already said what it had to).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e exitError) Unwrap() error { return e.err }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "lading",
		Short:         "A container registry with vulnerability scanning built in",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
	}
	root.AddCommand(newServeCommand(), newVersionCommand(), newAdminCommand(), newDBCommand(), newScanCommand(), newVEXCommand())
	return root
}

// applyEnv sets every flag not given on the command line from LADING_<FLAG> (upper case,
// dashes as underscores), so each flag can also come from the environment.
func applyEnv(flags *pflag.FlagSet) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "LADING_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if setErr := flags.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("%s: %w", name, setErr)
			}
		}
	})
	return err
}
