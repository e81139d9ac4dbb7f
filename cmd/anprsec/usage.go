package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// exitUsage is the exit status of a command line that names no command or
// flag anprsec has: scripts must not take a typo for success.
const exitUsage = 2

// usageError is an error of the command line itself (an unknown
// subcommand, flag or argument), which main reports with exitUsage.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitCode is the status main exits with for err.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return 1
}

// strictCommands makes every command group refuse what it does not know:
// `anprsec postazioni frobnica` is an error naming the group's commands,
// not the group's help with exit 0; an unknown flag is a usage error too.
func strictCommands(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{flagErrorIT(err)} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = groupArgs
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		} else if check := c.Args; check != nil {
			// A wrong number of arguments is a usage error too.
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usageError{err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// groupArgs refuses any argument of a command group: a word there is a
// subcommand anprsec does not have.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, "  "+sub.Name())
		}
	}
	return usageError{fmt.Errorf("%q non è un comando di %q; i comandi sono:\n%s", args[0], cmd.CommandPath(), strings.Join(names, "\n"))}
}
