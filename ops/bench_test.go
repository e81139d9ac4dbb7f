package ops

import (
	"flag"
	"fmt"
	"testing"

	"anprsec/store"
)

// BenchmarkScrapeStore is the store part of a scrape with 20,000 queued
// mails (an Italy-scale activation day).
func BenchmarkScrapeStore(b *testing.B) {
	st := openStore(b)
	for c := 0; c < 20; c++ {
		err := st.Update(func(tx *store.Tx) error {
			for i := range 1000 {
				m := &store.Mail{ID: store.PINMailID(fmt.Sprintf("SC%010d", c*1000+i)), Kind: store.MailPIN, CF: "RSSMRA68A01H501Y"}
				if _, err := tx.QueueMail(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	hint := &oldestHint{}
	if *cold {
		hint = nil
	}
	for b.Loop() {
		err := st.View(func(tx *store.Tx) error {
			g, err := readGauges(tx, "rsa2048", []string{"certificati", "crl"}, hint)
			if err == nil && g.backlog.MailsQueued != 20000 {
				err = fmt.Errorf("queued %d", g.backlog.MailsQueued)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

var cold = flag.Bool("cold", false, "BenchmarkScrapeStore: read the whole queue at each scrape")
