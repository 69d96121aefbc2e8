// Command credits runs the credits service and its tools:
//
//	credits serve      run the HTTP API (and with --demo the demo page)
//	credits estimate   price a list of work and name the plan that fits
//	credits migrate    apply the store's schema migrations and exit
//	credits verify     check every workspace's invariants; non-zero exit on a violation
//	credits backup     copy a SQLite database while it is being served
//	credits bench      measure pairs/s and latency against the references
//	credits version    print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `credits: monthly AI credits for website builders

Usage:
  credits serve [--addr ADDR] [--db PATH|URL] [--config FILE] [--demo]
  credits estimate [--config FILE] OPERATION=COUNT ...
  credits migrate [--db PATH|URL]
  credits verify [--db PATH|URL] [--json]
  credits backup FILE [--db PATH]
  credits bench [--duration 5s] [--workers 64] [--pg URL] [--url URL] [--json FILE] ...
  credits version

Run "credits COMMAND --help" for a command's flags.
`

// Run runs one command and returns the process's exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		cmd := &ServeCommand{Stdout: stdout, Stderr: stderr}
		if err = cmd.ParseFlags(args[1:], os.Getenv); err == nil {
			err = cmd.Run(ctx)
		}
	case "estimate":
		err = (&EstimateCommand{Stdout: stdout}).Run(ctx, args[1:])
	case "migrate":
		err = (&MigrateCommand{Stdout: stdout}).Run(ctx, args[1:])
	case "bench":
		err = (&BenchCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "verify":
		err = (&VerifyCommand{Stdout: stdout}).Run(ctx, args[1:])
	case "backup":
		err = (&BackupCommand{Stdout: stdout}).Run(ctx, args[1:])
	case "version", "--version":
		fmt.Fprintln(stdout, "credits", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "credits: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(flagError)):
		return 2 // the flag package has said what is wrong
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "credits:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "credits:", err)
		return 1
	}
}

// flagError is a flag the flag package refused and already reported.
type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }

// parseError keeps --help a success and makes other flag errors exit 2.
func parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return flagError{err}
}

// usageError is a mistake on the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// envOr returns the environment's value for key, or def.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
