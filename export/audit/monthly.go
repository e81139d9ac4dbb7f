package audit

import (
	"bytes"
	"context"
	"fmt"
	"sort"
)

var monthlyCols = []column{
	{"Mese", 0, kText},
	{"Codice ISTAT", 0, kText},
	{"Comune", 0, kText},
	{"Certificati emessi", 0, kInt},
	{"Certificati revocati", 0, kInt},
	{"Smart card attivate", 0, kInt},
}

// monthlyCSVs writes mensile-<YYYY-MM>.csv for each month of the period:
// one line per comune with any certificate issued or revoked or any card
// activated in that month (within the period), in ISTAT order.
func (n *national) monthlyCSVs(ctx context.Context) error {
	months := make([]string, 0, len(n.months))
	for m := range n.months {
		months = append(months, m)
	}
	sort.Strings(months)
	for _, m := range months {
		byComune := n.months[m]
		codes := make([]string, 0, len(byComune))
		for c := range byComune {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		var buf bytes.Buffer
		t := newTable(monthlyCols, n.e.loc())
		if err := t.csvTo(&buf); err != nil {
			return err
		}
		if err := t.header(); err != nil {
			return err
		}
		for _, c := range codes {
			f := byComune[c]
			if err := t.data(m, c, n.names[c], f.issued, f.revoked, f.activated); err != nil {
				return err
			}
		}
		if err := t.finish(""); err != nil {
			return err
		}
		name := n.e.place(NationalDir, MonthlyName(m))
		if err := n.e.Target.Write(ctx, name, &buf); err != nil {
			return fmt.Errorf("audit: scrittura di %s: %w", name, err)
		}
		n.res.Monthly = append(n.res.Monthly, name)
	}
	return nil
}
