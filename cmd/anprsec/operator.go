package main

import (
	"os"
	"os/user"
	"strconv"

	"anprsec/lifecycle"
)

// operatorActor is the history actor of a state change made from the CLI:
// the OS user running it ("back-office:<user>"), so that every back-office
// change names its author (docs/rules.md#history). Operators run the CLI as
// themselves, not through a shared account.
func operatorActor() string {
	u, err := user.Current()
	if err != nil {
		return lifecycle.BackOfficeOperator("uid" + strconv.Itoa(os.Getuid()))
	}
	return lifecycle.BackOfficeOperator(u.Username)
}
