// Package cli is the shoal command line: the client commands, which talk
// gRPC to a running server (dataset, models, predict, train, jobs), and
// demo-data, completion and version. It keeps the conventions of a Unix
// tool: help on stdout, an error printed once on stderr, exit codes by class
// of failure (ExitCode), tables for people and -o json|yaml for scripts,
// progress bars and prompts only on a terminal.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shoalml/shoal/internal/buildinfo"
)

// Env is what a run of the command line reads and writes: its standard
// streams, whether each is a terminal (progress bars, redrawn lines and
// confirmation prompts only go to terminals), and the environment.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	StdinTerminal, StdoutTerminal, StderrTerminal bool

	// LookupEnv reads environment variables (SHOAL_ADDR); nil reads none.
	LookupEnv func(string) (string, bool)
}

// OSEnv is the process's own standard streams and environment.
func OSEnv() Env {
	return Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		StdinTerminal: isTerminal(os.Stdin), StdoutTerminal: isTerminal(os.Stdout), StderrTerminal: isTerminal(os.Stderr),
		LookupEnv: os.LookupEnv,
	}
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Passthrough is a command that parses its own arguments, such as serve,
// whose flags come from the configuration package. Its Run gets every
// argument after its name, --help included.
type Passthrough struct {
	Name, Short string
	Run         func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Run runs the command line args (without the program's name) and returns
// its error; ExitCode gives the exit code. It prints nothing about the error.
func Run(ctx context.Context, args []string, env Env, extra ...Passthrough) error {
	_, err := execute(ctx, args, &env, extra)
	return err
}

// Main runs the command line args, prints its error once on stderr as
// "shoal: <message>" (with the command's usage after a usage error), and
// returns the exit code.
func Main(ctx context.Context, args []string, env Env, extra ...Passthrough) int {
	cmd, err := execute(ctx, args, &env, extra)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "shoal: %v\n", err)
	var u *usageError
	if errors.As(err, &u) && !u.refusal && cmd != nil && !cmd.DisableFlagParsing {
		fmt.Fprintf(env.Stderr, "\n%s", cmd.UsageString())
	}
	return ExitCode(err)
}

func execute(ctx context.Context, args []string, env *Env, extra []Passthrough) (*cobra.Command, error) {
	if env.LookupEnv == nil {
		env.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root := newRoot(env, extra)
	root.SetArgs(args)
	return root.ExecuteContextC(ctx)
}

const rootLong = `Shoal trains, registers and serves image classifiers over gRPC and REST.

shoal serve runs the platform; the client commands talk to it over gRPC at
--addr (default localhost:9090, or $SHOAL_ADDR), with the token of --token
($SHOAL_TOKEN; default: ./data/admin-token, which shoal serve writes on a new
install), over TLS with --tls or --ca-file. Commands that get or list
things print a table, or with -o json the same JSON the REST API answers
(-o yaml: the same document as YAML). Deletes ask for confirmation on a
terminal and need --yes anywhere else.

` + exitCodesHelp

// program holds what every command needs: the streams and the connection
// flags.
type program struct {
	env  *Env
	conn *connFlags
}

func newRoot(env *Env, extra []Passthrough) *cobra.Command {
	root := &cobra.Command{
		Use:               "shoal",
		Short:             "Train, register and serve image classifiers over gRPC and REST",
		Long:              rootLong,
		Version:           buildinfo.Version(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	p := &program{env: env, conn: &connFlags{}}
	p.conn.register(root.PersistentFlags(), env.LookupEnv)

	// A group of commands runs only to refuse what it was given: its usage
	// shows its commands, not a command line of its own.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	if len(extra) > 0 {
		root.AddGroup(&cobra.Group{ID: "server", Title: "Server:"})
	}
	root.AddGroup(
		&cobra.Group{ID: "client", Title: "Client commands (they talk to the server at --addr):"},
		&cobra.Group{ID: "other", Title: "Other commands:"},
	)
	for _, c := range []*cobra.Command{p.datasetCmd(), p.modelsCmd(), p.predictCmd(), p.trainCmd(), p.jobsCmd(), p.tokensCmd(), p.auditCmd()} {
		c.GroupID = "client"
		root.AddCommand(c)
	}
	for _, x := range extra {
		root.AddCommand(p.passthroughCmd(x))
	}
	for _, c := range []*cobra.Command{p.demoDataCmd(), completionCmd(root), versionCmd()} {
		c.GroupID = "other"
		root.AddCommand(c)
	}
	root.SetHelpCommand(helpCmd(root))
	root.SetHelpCommandGroupID("other")
	strictArgs(root)
	return root
}

// deprecated notes on stderr that a flag still works but has a successor.
// (cobra's MarkDeprecated writes its note to stdout, into output that
// scripts parse.)
func (p *program) deprecated(cmd *cobra.Command, flag, instead string) {
	if cmd.Flags().Changed(flag) {
		fmt.Fprintf(p.env.Stderr, "note: --%s is deprecated; use %s\n", flag, instead)
	}
}

func (p *program) passthroughCmd(x Passthrough) *cobra.Command {
	cmd := &cobra.Command{
		Use:                x.Name + " [flags]",
		Short:              x.Short,
		GroupID:            "server",
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return x.Run(cmd.Context(), args, p.env.Stdout, p.env.Stderr)
		},
	}
	// `shoal help serve` is `shoal serve --help`: the command knows its flags.
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		if err := x.Run(c.Context(), []string{"--help"}, p.env.Stdout, p.env.Stderr); err != nil {
			fmt.Fprintf(p.env.Stderr, "shoal: %v\n", err)
		}
	})
	return cmd
}

// helpCmd is `shoal help [command]`: cobra's own answers an unknown topic
// with the root's help and success.
func helpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("unknown help topic %q", strings.Join(args, " "))
			}
			return cmd.Help()
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, cobra.CompletionWithDesc(c.Name(), c.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), buildinfo.Version())
			return err
		},
	}
}

func completionCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script",
		Long: `Prints the completion script of shoal's commands and flags for a shell.

  bash:  source <(shoal completion bash)     (needs the bash-completion package)
  zsh:   shoal completion zsh > "${fpath[1]}/_shoal"
  fish:  shoal completion fish > ~/.config/fish/completions/shoal.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return usagef("unknown shell %q: want bash, zsh or fish", args[0])
		},
	}
}

// strictArgs makes every command's arguments fail as usage errors: a group
// of commands refuses an unknown command (cobra would print its help and
// succeed), and a command that declares no argument rule takes none.
func strictArgs(c *cobra.Command) {
	if c.HasSubCommands() {
		if c.Args == nil {
			c.Args = cobra.ArbitraryArgs
		}
		if c.RunE == nil && c.Run == nil {
			c.RunE = unknownCommand
		}
	} else if c.Args == nil {
		c.Args = exactArgs(0)
	}
	for _, sub := range c.Commands() {
		strictArgs(sub)
	}
}

func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usagef("missing a command after %q", cmd.CommandPath())
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, which only its legacy path applies
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usagef("%s", msg)
}

// rangeArgs accepts between lo and hi arguments (hi < 0: no upper bound).
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && (hi < 0 || len(args) <= hi) {
			return nil
		}
		want := fmt.Sprintf("%d to %d", lo, hi)
		switch {
		case hi < 0:
			want = fmt.Sprintf("at least %d", lo)
		case lo == hi:
			want = fmt.Sprint(lo)
		}
		return usagef("%s takes %s argument(s), got %d: %s", cmd.CommandPath(), want, len(args), cmd.UseLine())
	}
}

func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }
