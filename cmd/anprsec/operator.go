package main

import (
	"os"
	"os/user"
	"strconv"

	"anprsec/lifecycle"
)

// operatorActor is the history actor of a state change made from the CLI:
// the person running it, "back-office:<user>", so that every back-office
// change names its author (docs/rules.md#history). The CLI needs the
// service's key files, so operators run it through sudo as the service
// user; sudo then names the operator in SUDO_USER (it sets the variable
// itself, and its env_reset keeps callers from choosing it). Without sudo
// the author is the OS user running the command.
func operatorActor() string {
	if name := os.Getenv("SUDO_USER"); name != "" && os.Getenv("SUDO_UID") != "" {
		return lifecycle.BackOfficeOperator(name)
	}
	u, err := user.Current()
	if err != nil {
		return lifecycle.BackOfficeOperator("uid" + strconv.Itoa(os.Getuid()))
	}
	return lifecycle.BackOfficeOperator(u.Username)
}
