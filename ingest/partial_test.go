package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"anprsec/drop"
)

// noMoveDrop refuses every rename into a folder named sub (the move of a
// file out of the inbox); writes, receipts included, go through.
type noMoveDrop struct {
	drop.Drop
	sub string
}

func (d *noMoveDrop) Rename(ctx context.Context, from, to string) error {
	if strings.Contains(to, "/"+d.sub+"/") {
		return errors.New("permission denied")
	}
	return d.Drop.Rename(ctx, from, to)
}

// logTo sends the inbox's log to a buffer.
func (e *env) logTo() *bytes.Buffer {
	var buf bytes.Buffer
	e.in.Log = slog.New(slog.NewTextHandler(&buf, nil))
	return &buf
}

func TestFailedMoveAfterTheReceiptIsLoggedAsSuch(t *testing.T) {
	e := newEnv(t)
	e.in.Drop = &noMoveDrop{Drop: e.in.Drop, sub: "elaborati"}
	log := e.logTo()
	e.put("a.csv", "uno")
	p := okProc()
	if _, err := e.run(p.process); err == nil {
		t.Fatal("Run succeeded with the move refused")
	}
	if len(e.receipt("a.csv")) != 1 || !e.exists("a.csv") {
		t.Fatalf("want the receipt written and the file still in place")
	}
	got := log.String()
	if !strings.Contains(got, "file processed, its rows committed and its receipt written; moving it to elaborati/ failed, will retry the move") ||
		strings.Contains(got, "not processed") {
		t.Errorf("log:\n%s", got)
	}
}

func TestFailedMoveOfARefusedFileIsLoggedAsSuch(t *testing.T) {
	e := newEnv(t)
	e.in.Drop = &noMoveDrop{Drop: e.in.Drop, sub: "scartati"}
	log := e.logTo()
	e.put("a.txt", "uno") // an extension the inbox does not take
	if _, err := e.run(okProc().process); err == nil {
		t.Fatal("Run succeeded with the move refused")
	}
	got := log.String()
	if !strings.Contains(got, "file refused (TIPO_FILE) and its receipt written; moving it to scartati/ failed, will retry") ||
		strings.Contains(got, "not processed") {
		t.Errorf("log:\n%s", got)
	}
}

func TestFailureBeforeAnyWorkIsStillNotProcessed(t *testing.T) {
	e := newEnv(t)
	log := e.logTo()
	e.put("a.csv", "uno")
	if _, err := e.run(errProc().process); err == nil {
		t.Fatal("Run succeeded with the processor failing")
	}
	if !strings.Contains(log.String(), "file not processed, will retry") {
		t.Errorf("log:\n%s", log.String())
	}
}
