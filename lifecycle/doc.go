// Package lifecycle is the one home of the domain rules
// (docs/rules.md): the state machines of smart cards (card.go), workstation
// certificates (postazione.go) and utenze (utenza.go), who may ask for each
// operation (authz.go), the comune invariant (comune.go), and one state
// error and one motivo rule (errors.go). It reads and writes the store
// inside the caller's transaction and imports no job, ingest or export
// package: the census, the console requests, the manifests, the CLI and the
// audit all call it.
package lifecycle
