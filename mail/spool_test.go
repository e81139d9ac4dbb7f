package mail

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestSpool(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "mail")
	sp := Spool{Dir: dir}
	raw1, err := Compose(testMessage(), fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	m2 := testMessage()
	m2.MessageID = "<pin-0002.058091@anpr.example.it>"
	raw2, _ := Compose(m2, fakeEncrypt)
	ctx := context.Background()

	if err := sp.Send(ctx, envFrom, []string{envTo}, raw1); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool dir mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	// Same Message-ID again, with different bytes (a re-encryption): the
	// same file, replaced.
	m1b := testMessage()
	m1b.Text = "altro testo"
	raw1b, _ := Compose(m1b, fakeEncrypt)
	if bytes.Equal(raw1, raw1b) {
		t.Fatal("test needs different bytes")
	}
	if err := sp.Send(ctx, envFrom, []string{envTo}, raw1b); err != nil {
		t.Fatal(err)
	}
	if err := sp.Send(ctx, envFrom, []string{envTo}, raw2); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("spool holds %v, want 2 .eml files and nothing else", names)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".eml") || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("unexpected file %q", e.Name())
		}
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	p1 := sp.Path(raw1)
	if !strings.HasPrefix(filepath.Base(p1), "pin-0001.058091@anpr.example.it-") {
		t.Errorf("file name %q does not show the Message-ID", filepath.Base(p1))
	}
	if got, err := os.ReadFile(p1); err != nil || !bytes.Equal(got, raw1b) {
		t.Errorf("spooled bytes differ (%v)", err)
	}
	if got, err := os.ReadFile(sp.Path(raw2)); err != nil || !bytes.Equal(got, raw2) {
		t.Errorf("second message differs (%v)", err)
	}
	parsePGPMIME(t, raw1b)
}

func TestSpoolConcurrentSameMessage(t *testing.T) {
	dir := t.TempDir()
	sp := Spool{Dir: dir}
	raw, _ := Compose(testMessage(), fakeEncrypt)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- sp.Send(context.Background(), envFrom, []string{envTo}, raw) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files, want 1", len(entries))
	}
	if got, _ := os.ReadFile(sp.Path(raw)); !bytes.Equal(got, raw) {
		t.Fatal("spooled bytes differ")
	}
}

func TestSpoolErrors(t *testing.T) {
	raw, _ := Compose(testMessage(), fakeEncrypt)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Spool{Dir: dir}).Send(ctx, envFrom, []string{envTo}, raw); err == nil || !Temporary(err) {
		t.Errorf("cancelled ctx: %v", err)
	}
	if err := (Spool{}).Send(context.Background(), envFrom, []string{envTo}, raw); err == nil {
		t.Error("empty Dir accepted")
	}
	if err := (Spool{Dir: dir}).Send(context.Background(), envFrom, nil, raw); err == nil {
		t.Error("no recipients accepted")
	}
	if err := (Spool{Dir: dir}).Send(context.Background(), envFrom, []string{envTo}, nil); err == nil {
		t.Error("empty message accepted")
	}
	// Dir is a file: the error is reported and nothing is left behind.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if err := (Spool{Dir: file}).Send(context.Background(), envFrom, []string{envTo}, raw); err == nil {
		t.Error("spool into a file accepted")
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		if err := (Spool{Dir: ro}).Send(context.Background(), envFrom, []string{envTo}, raw); err == nil {
			t.Error("read-only dir accepted")
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "file" && e.Name() != "ro" {
			t.Errorf("left behind %q", e.Name())
		}
	}
}

func TestSpoolName(t *testing.T) {
	a := spoolName("<pin-1@anpr.example.it>", nil)
	if a != spoolName("pin-1@anpr.example.it", nil) || a != spoolName(" <pin-1@anpr.example.it> ", nil) {
		t.Error("brackets or spaces change the name")
	}
	if a == spoolName("<pin-2@anpr.example.it>", nil) {
		t.Error("different IDs, same name")
	}
	// Sanitising maps both to "a_b@c": the hash keeps them apart.
	if spoolName("<a/b@c>", nil) == spoolName("<a_b@c>", nil) {
		t.Error("sanitised collision")
	}
	if n := spoolName("<../../etc/passwd@x>", nil); strings.Contains(n, "/") || strings.HasPrefix(n, ".") {
		t.Errorf("unsafe name %q", n)
	}
	x1, x2 := spoolName("", []byte("x")), spoolName("", []byte("x"))
	if x1 == spoolName("", []byte("y")) || x1 != x2 {
		t.Error("no Message-ID: not keyed on content")
	}
	if got := headerMessageID([]byte("Subject: x\r\nMessage-ID:  <m@x>\r\n\r\nbody")); got != "<m@x>" {
		t.Errorf("headerMessageID = %q", got)
	}
	if got := headerMessageID([]byte("Subject: x\r\n\r\nMessage-ID: <m@x>\r\n")); got != "" {
		t.Errorf("Message-ID taken from the body: %q", got)
	}
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}-[0-9a-f]{16}\.eml$|^sha256-[0-9a-f]{32}\.eml$`)

// FuzzSpoolName: any raw message (and so any Message-ID) yields a safe,
// stable file name inside the spool directory, without panics.
func FuzzSpoolName(f *testing.F) {
	f.Add([]byte("Message-ID: <pin-1@anpr.example.it>\r\n\r\nx"))
	f.Add([]byte("Message-ID: <../../x@y>\r\n\r\n"))
	f.Add([]byte("Message-ID: \r\n\r\n"))
	f.Add([]byte("Message-ID: <\xff\x00/\\@..>\r\n"))
	f.Add([]byte("no header at all"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		id := headerMessageID(raw)
		n := spoolName(id, raw)
		if !safeName.MatchString(n) {
			t.Fatalf("unsafe name %q for %q", n, id)
		}
		if filepath.Base(n) != n || n != spoolName(id, raw) {
			t.Fatalf("name %q not a stable base name", n)
		}
		if Spool.Path(Spool{Dir: "/spool"}, raw) != filepath.Join("/spool", n) {
			t.Fatal("Path disagrees with spoolName")
		}
	})
}
