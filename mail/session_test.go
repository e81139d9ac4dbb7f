package mail

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"anprsec/mail/smtptest"
)

// TestSession: several messages over one session; a refused recipient
// fails its message only, and the next one goes (on a new connection).
func TestSession(t *testing.T) {
	srv := smtptest.Start(t)
	srv.Reject("rifiutato@example.it", 550, "no such user")
	ss := plainSender(srv).Session(context.Background())
	defer ss.Close()
	for i, to := range []string{"a@example.it", "b@example.it", "rifiutato@example.it", "c@example.it"} {
		raw := []byte(fmt.Sprintf("Subject: x\r\nMessage-ID: <m%d@x>\r\n\r\ntesto %d\r\n", i, i))
		err := ss.Send(context.Background(), envFrom, []string{to}, raw)
		if to == "rifiutato@example.it" {
			if err == nil || Temporary(err) {
				t.Errorf("refused recipient: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages received, want 3", len(msgs))
	}
	for i, want := range []string{"testo 0", "testo 1", "testo 3"} {
		if !bytes.Contains(msgs[i].Data, []byte(want)) || len(msgs[i].To) != 1 {
			t.Errorf("message %d: %q to %v", i, msgs[i].Data, msgs[i].To)
		}
	}
	// A session whose ctx is cancelled sends nothing more.
	ctx, cancel := context.WithCancel(context.Background())
	ss2 := plainSender(srv).Session(ctx)
	cancel()
	if err := ss2.Send(context.Background(), envFrom, []string{"a@example.it"}, []byte("Subject: y\r\n\r\nz\r\n")); err == nil || !Temporary(err) {
		t.Errorf("cancelled session: %v", err)
	}
	ss2.Close()
}
