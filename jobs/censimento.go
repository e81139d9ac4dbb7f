package jobs

import (
	"context"

	"anprsec/ingest"
	"anprsec/ingest/census"
)

// censimentoJob reads census workbooks from censimento/ (docs/rules.md#census).
var censimentoJob = Job{
	Name:        "ingest-censimento",
	Description: "legge le cartelle del censimento (censimento/*.xlsx): comuni, utenze, richieste di smart card e certificati; scrive le ricevute",
	Run: func(ctx context.Context, env *Env, run *Run) error {
		in := &ingest.Inbox{
			Drop: env.Drop, Store: env.Store, Kind: "ingest-censimento", Actor: census.Actor, Loc: env.Loc, Dir: "censimento",
			Exts: []string{".xlsx"}, MaxSize: int64(env.Config.Drop.MaxFileSize),
			Settle: env.Config.Drop.Settle, MaxAttempts: env.Config.Drop.MaxAttempts, SpoolDir: env.SpoolDir(), Log: run.Log,
		}
		g := &census.Ingester{
			Store: env.Store, Comuni: env.Comuni,
			ChunkRows: env.Config.Census.ChunkRows, MaxRows: env.Config.Census.MaxRows,
			CardPrefix: env.Config.Cards.SerialPrefix,
		}
		st, err := in.Run(ctx, g.Process)
		addInboxStats(run, st)
		if st.MissingDir {
			run.Add("missing_dir", 1)
		}
		return err
	},
}
