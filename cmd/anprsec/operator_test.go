package main

import (
	"os/user"
	"testing"
)

// TestBackOfficeAuthorIsTheOperatorBehindSudo: through `sudo -u anprsec`
// the author is the operator sudo names, not the service user; without
// sudo, the OS user running the command.
func TestBackOfficeAuthorIsTheOperatorBehindSudo(t *testing.T) {
	t.Setenv("SUDO_USER", "mrossi")
	t.Setenv("SUDO_UID", "1001")
	if got := operatorActor(); got != "back-office:mrossi" {
		t.Errorf("behind sudo: %q, want back-office:mrossi", got)
	}
	t.Setenv("SUDO_USER", "")
	t.Setenv("SUDO_UID", "")
	u, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	if got := operatorActor(); got != "back-office:"+u.Username {
		t.Errorf("without sudo: %q, want back-office:%s", got, u.Username)
	}
}
