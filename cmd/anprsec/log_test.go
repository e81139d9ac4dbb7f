package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// No value makes a log line unbounded: a huge string or error is logged
// cut, with its length.
func TestHugeLoggedValuesAreCut(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, logOptions(false)))
	huge := strings.Repeat("A", 1<<20)
	log.Error("file not processed", "file", huge, "err", errors.New(huge), "rows", 3)
	if buf.Len() > 3*maxLogValue || !strings.Contains(buf.String(), "tagliato: 1048576 byte") || !strings.Contains(buf.String(), `"rows":3`) {
		t.Errorf("log line of %d bytes: %.300s", buf.Len(), buf.String())
	}
}
