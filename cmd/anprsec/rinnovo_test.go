package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"anprsec/lifecycle"
	"anprsec/secret"
	"anprsec/store"
)

// TestRinnovoScripts runs the stories of testdata/rinnovo/*.txt: the
// renewal of a certificate from the CLI and the register of installations,
// which a console request fills (registra) and someone holding the store
// key may try to edit behind the history (alterainstallazione).
func TestRinnovoScripts(t *testing.T) {
	p := scriptParams("testdata/rinnovo")
	p.Cmds["registra"] = cmdRegisterInstallation
	p.Cmds["alterainstallazione"] = cmdAlterInstallation
	testscript.Run(t, p)
}

func scriptStore(ts *testscript.TestScript) *store.Store {
	key, err := secret.ReadKey(ts.MkAbs("var/keys/store.key"))
	ts.Check(err)
	st, err := store.Open(store.Options{Dir: ts.MkAbs("var/data"), Key: key})
	ts.Check(err)
	return st
}

// registra ISTAT CODE HOST OFFICE
//
// registers, as the ALP RSSMRA80A01H501U would by REGISTRA_INSTALLAZIONE,
// that the current certificate of CODE is installed on HOST in OFFICE.
func cmdRegisterInstallation(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: registra ISTAT CODE HOST OFFICE")
	}
	st := scriptStore(ts)
	defer st.Close()
	ts.Check(st.Update(func(tx *store.Tx) error {
		_, _, ref, err := lifecycle.RegisterInstallationTx(tx, store.Source{Actor: "RSSMRA80A01H501U"},
			lifecycle.InstallationRequest{ISTAT: args[0], Code: args[1], Host: args[2], Office: args[3]})
		if ref != nil {
			ts.Fatalf("registra: %s %s", ref.Code, ref.Message)
		}
		return err
	}))
}

// alterainstallazione ISTAT CODE HOST
//
// changes the host of the register records of CODE to HOST directly in
// the store, without a history entry, as a holder of the store key could.
func cmdAlterInstallation(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: alterainstallazione ISTAT CODE HOST")
	}
	st := scriptStore(ts)
	defer st.Close()
	ts.Check(st.Update(func(tx *store.Tx) error {
		var ins []*store.Installation
		if err := tx.InstallationsOf(args[0], func(in *store.Installation) error {
			if in.Code == args[1] {
				ins = append(ins, in)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(ins) == 0 {
			ts.Fatalf("alterainstallazione: no record of %s", args[1])
		}
		for _, in := range ins {
			in.Host = args[2]
			if err := tx.PutInstallation(in); err != nil {
				return err
			}
		}
		return nil
	}))
}
