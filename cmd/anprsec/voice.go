package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The operator's voice: what anprsec shows a person (help, usage, the
// errors of the command line) is Italian, cobra's own texts included;
// command and flag names stay as they are (they are the operator's
// contract).

// italianHelp gives root and every command under it the Italian usage and
// help, the Italian `help` and `completion` commands and an Italian
// -h/--help on each command.
func italianHelp(root *cobra.Command) {
	root.SetUsageFunc(usageIT)
	root.SetHelpTemplate(`{{with (or .Long .Short)}}{{. | trimTrailingWhitespaces}}

{{end}}{{if or .Runnable .HasSubCommands}}{{.UsageString}}{{end}}`)
	root.SetHelpCommand(helpCmdIT(root))
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			completionIT(c, root.Name())
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("help") == nil {
			c.Flags().BoolP("help", "h", false, "aiuto per "+c.Name())
		}
		if c.Args != nil || hasRequiredFlags(c) {
			c.Args = argsIT(c.Args)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// helpCmdIT is the `help` command, in Italian.
func helpCmdIT(root *cobra.Command) *cobra.Command {
	help := &cobra.Command{
		Use:   "help [comando]",
		Short: "Aiuto su un comando",
		Long: `Mostra l'aiuto di un comando.
Scrivere ` + root.Name() + ` help [percorso del comando] per i dettagli.`,
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if cmd == nil || err != nil || len(rest) > 0 {
				return usageError{fmt.Errorf("nessun aiuto per %q: il comando non esiste (anprsec help elenca i comandi)", strings.Join(args, " "))}
			}
			return cmd.Help()
		},
	}
	help.Flags().BoolP("help", "h", false, "aiuto per help")
	return help
}

// completionIT translates the texts of cobra's `completion` command.
func completionIT(c *cobra.Command, name string) {
	c.Short = "Genera lo script di completamento automatico per la shell indicata"
	c.Long = fmt.Sprintf(`Genera lo script di completamento automatico di %s per la shell indicata.
L'aiuto di ciascun sottocomando spiega come usare lo script generato.
`, name)
	long := map[string]string{
		"bash": `Genera lo script di completamento automatico per la shell bash.

Lo script richiede il pacchetto 'bash-completion': se non è installato, lo si
installa con il gestore di pacchetti del sistema.

Per caricare il completamento nella sessione corrente:

	source <(%[1]s completion bash)

Per caricarlo in ogni nuova sessione, eseguire una volta:

	%[1]s completion bash > /etc/bash_completion.d/%[1]s

La configurazione vale dalla prossima shell aperta.
`,
		"zsh": `Genera lo script di completamento automatico per la shell zsh.

Se il completamento non è già attivo nell'ambiente, attivarlo eseguendo una
volta:

	echo "autoload -U compinit; compinit" >> ~/.zshrc

Per caricare il completamento nella sessione corrente:

	source <(%[1]s completion zsh)

Per caricarlo in ogni nuova sessione, eseguire una volta:

	%[1]s completion zsh > "${fpath[1]}/_%[1]s"

La configurazione vale dalla prossima shell aperta.
`,
		"fish": `Genera lo script di completamento automatico per la shell fish.

Per caricare il completamento nella sessione corrente:

	%[1]s completion fish | source

Per caricarlo in ogni nuova sessione, eseguire una volta:

	%[1]s completion fish > ~/.config/fish/completions/%[1]s.fish

La configurazione vale dalla prossima shell aperta.
`,
		"powershell": `Genera lo script di completamento automatico per powershell.

Per caricare il completamento nella sessione corrente:

	%[1]s completion powershell | Out-String | Invoke-Expression

Per caricarlo in ogni nuova sessione, aggiungere l'output del comando qui
sopra al profilo di powershell.
`,
	}
	for _, sub := range c.Commands() {
		sh := sub.Name()
		sub.Short = "Genera lo script di completamento automatico per " + sh
		if l, ok := long[sh]; ok {
			sub.Long = fmt.Sprintf(l, name)
		}
		if f := sub.Flags().Lookup("no-descriptions"); f != nil {
			f.Usage = "senza le descrizioni dei comandi"
		}
	}
}

// usageIT writes c's usage: cobra's layout, in Italian.
func usageIT(c *cobra.Command) error {
	w := c.OutOrStderr()
	fmt.Fprint(w, "Uso:")
	if c.Runnable() {
		fmt.Fprintf(w, "\n  %s", useLineIT(c))
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\n  %s [comando]", c.CommandPath())
	}
	if len(c.Aliases) > 0 {
		fmt.Fprintf(w, "\n\nAlias:\n  %s", c.NameAndAliases())
	}
	if c.HasExample() {
		fmt.Fprintf(w, "\n\nEsempi:\n%s", c.Example)
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprint(w, "\n\nComandi:")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(w, "\n  %-*s %s", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
	}
	if c.HasAvailableLocalFlags() {
		fmt.Fprint(w, "\n\nOpzioni:\n")
		flagUsagesIT(w, c.LocalFlags())
	}
	if c.HasAvailableInheritedFlags() {
		fmt.Fprint(w, "\n\nOpzioni globali:\n")
		flagUsagesIT(w, c.InheritedFlags())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\n\nScrivere \"%s [comando] --help\" per l'aiuto di un comando.", c.CommandPath())
	}
	fmt.Fprintln(w)
	return nil
}

// useLineIT is c's use line with "[opzioni]" for cobra's "[flags]".
func useLineIT(c *cobra.Command) string {
	l := c.UseLine()
	if c.DisableFlagsInUseLine || !c.HasAvailableFlags() {
		return l
	}
	return strings.Replace(l, "[flags]", "[opzioni]", 1)
}

// flagTypeIT names a flag's value in the usage when its text names none
// (a `NOME` between back quotes names it); the name is shown in capitals.
var flagTypeIT = map[string]string{
	"string": "testo", "strings": "testi", "stringArray": "testo",
	"int": "numero", "int64": "numero", "uint": "numero", "float64": "numero",
	"duration": "durata", "stringSlice": "testi",
}

// flagUsagesIT writes the flags of fs aligned, as pflag does, in Italian.
func flagUsagesIT(w io.Writer, fs *pflag.FlagSet) {
	type row struct{ left, right string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" && f.ShorthandDeprecated == "" {
			left = fmt.Sprintf("  -%s, --%s", f.Shorthand, f.Name)
		}
		name, usage := pflag.UnquoteUsage(f)
		if name != "" {
			if it, ok := flagTypeIT[name]; ok {
				name = it
			}
			left += " " + strings.ToUpper(name)
		}
		typ := f.Value.Type()
		if f.NoOptDefVal != "" && typ != "bool" && typ != "count" {
			left += fmt.Sprintf("[=%s]", f.NoOptDefVal)
		}
		if !defaultIsZero(f) {
			if typ == "string" {
				usage += fmt.Sprintf(" (predefinito %q)", f.DefValue)
			} else {
				usage += fmt.Sprintf(" (predefinito %s)", f.DefValue)
			}
		}
		if f.Deprecated != "" {
			usage += fmt.Sprintf(" (DISMESSA: %s)", f.Deprecated)
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	for i, r := range rows {
		sep := "\n"
		if i == len(rows)-1 {
			sep = ""
		}
		pad := strings.Repeat(" ", width+3)
		fmt.Fprintf(w, "%-*s   %s%s", width, r.left, strings.ReplaceAll(r.right, "\n", "\n"+pad), sep)
	}
}

// defaultIsZero reports whether f's default is its type's zero value
// (pflag then shows no default).
func defaultIsZero(f *pflag.Flag) bool {
	switch f.DefValue {
	case "", "false", "0", "0s", "[]", "<nil>":
		return true
	}
	return false
}

// flagErrorIT is pflag's error about the command line, in Italian.
func flagErrorIT(err error) error {
	var (
		ne *pflag.NotExistError
		re *pflag.ValueRequiredError
		ie *pflag.InvalidValueError
		se *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &ne):
		if s := ne.GetSpecifiedShortnames(); len(s) > 1 {
			return fmt.Errorf("opzione sconosciuta: -%s in -%s", ne.GetSpecifiedName(), s)
		} else if s != "" {
			return fmt.Errorf("opzione sconosciuta: -%s", s)
		}
		return fmt.Errorf("opzione sconosciuta: --%s", ne.GetSpecifiedName())
	case errors.As(err, &re):
		return fmt.Errorf("l'opzione --%s richiede un valore", re.GetFlag().Name)
	case errors.As(err, &ie):
		want := ie.GetFlag().Value.Type()
		if it, ok := flagTypeIT[want]; ok {
			want = it
		}
		if want == "durata" {
			want = "una durata come 90s, 15m o 2h"
		}
		return fmt.Errorf("valore %q non valido per l'opzione --%s (atteso: %s)", ie.GetValue(), ie.GetFlag().Name, want)
	case errors.As(err, &se):
		return fmt.Errorf("opzione scritta male: %s", se.GetSpecifiedFlag())
	}
	return err
}

var (
	argsExact = regexp.MustCompile(`^accepts (\d+) arg\(s\), received (\d+)$`)
	argsMin   = regexp.MustCompile(`^requires at least (\d+) arg\(s\), only received (\d+)$`)
	argsMax   = regexp.MustCompile(`^accepts at most (\d+) arg\(s\), received (\d+)$`)
	argsRange = regexp.MustCompile(`^accepts between (\d+) and (\d+) arg\(s\), received (\d+)$`)
	argsNone  = regexp.MustCompile(`^unknown command "(.*)" for "(.*)"$`)
	argsValid = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)"`)
)

// argsIT wraps an argument check (nil: any argument) so that its error is
// in Italian and a usage error (exit 2). It checks first the flags the
// command requires (cobra's own check, which comes later, is in English).
func argsIT(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		check = cobra.ArbitraryArgs
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := missingFlags(cmd); err != nil {
			return err
		}
		err := check(cmd, args)
		if err == nil {
			return nil
		}
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		msg := err.Error()
		p := cmd.CommandPath()
		switch {
		case argsExact.MatchString(msg):
			m := argsExact.FindStringSubmatch(msg)
			msg = fmt.Sprintf("%s vuole %s, ne ha ricevuti %s", p, argomenti(m[1]), m[2])
		case argsMin.MatchString(msg):
			m := argsMin.FindStringSubmatch(msg)
			msg = fmt.Sprintf("%s vuole almeno %s, ne ha ricevuti %s", p, argomenti(m[1]), m[2])
		case argsMax.MatchString(msg):
			m := argsMax.FindStringSubmatch(msg)
			msg = fmt.Sprintf("%s vuole al più %s, ne ha ricevuti %s", p, argomenti(m[1]), m[2])
		case argsRange.MatchString(msg):
			m := argsRange.FindStringSubmatch(msg)
			msg = fmt.Sprintf("%s vuole da %s a %s argomenti, ne ha ricevuti %s", p, m[1], m[2], m[3])
		case argsNone.MatchString(msg):
			m := argsNone.FindStringSubmatch(msg)
			msg = fmt.Sprintf("%s non vuole argomenti: %q è di troppo", p, m[1])
		case argsValid.MatchString(msg):
			m := argsValid.FindStringSubmatch(msg)
			msg = fmt.Sprintf("%q non è un argomento valido di %s", m[1], p)
		default:
			return err
		}
		return usageError{errors.New(msg)}
	}
}

// argomenti is "1 argomento", "2 argomenti".
func argomenti(n string) string {
	if n == "1" {
		return "1 argomento"
	}
	return n + " argomenti"
}

// hasRequiredFlags reports whether c has a flag marked required.
func hasRequiredFlags(c *cobra.Command) bool {
	found := false
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if isRequired(f) {
			found = true
		}
	})
	return found
}

func isRequired(f *pflag.Flag) bool {
	r := f.Annotations[cobra.BashCompOneRequiredFlag]
	return len(r) == 1 && r[0] == "true"
}

// missingFlags is the usage error naming the required flags of cmd left
// out, in Italian (nil when none is).
func missingFlags(cmd *cobra.Command) error {
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if isRequired(f) && !f.Changed {
			names = append(names, "--"+f.Name)
		}
	})
	switch len(names) {
	case 0:
		return nil
	case 1:
		return usageError{fmt.Errorf("manca l'opzione obbligatoria %s", names[0])}
	}
	return usageError{fmt.Errorf("mancano le opzioni obbligatorie %s", strings.Join(names, ", "))}
}

// esito is a run's outcome as an operator reads it.
func esito(outcome string) string {
	switch outcome {
	case "running":
		return "in corso"
	case "error":
		return "errore"
	case "interrupted":
		return "interrotto"
	case "panic":
		return "errore interno"
	}
	return outcome
}

// avvio is what started a run, as an operator reads it.
func avvio(trigger string) string {
	switch trigger {
	case "schedule":
		return "pianificato"
	case "manual":
		return "manuale"
	case "catch-up":
		return "recupero"
	}
	return trigger
}

// durata is a run's duration, to the millisecond.
func durata(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}
