package smtptest

import (
	"bytes"
	"errors"
	"net/smtp"
	"net/textproto"
	"testing"
	"time"
)

func send(s *Server, to string, body string) error {
	return smtp.SendMail(s.Addr, nil, "a@example.it", []string{to}, []byte(body))
}

func code(err error) int {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code
	}
	return 0
}

func TestKnobs(t *testing.T) {
	s := Start(t)
	body := "Subject: x\r\n\r\nciao\r\n"

	s.Fail(Rcpt, 451, "later", 2)
	for i := range 2 {
		if err := send(s, "b@example.it", body); code(err) != 451 {
			t.Fatalf("attempt %d: %v, want 451", i, err)
		}
	}
	if err := send(s, "b@example.it", body); err != nil {
		t.Fatalf("after the faults: %v", err)
	}

	s.Reject("C@example.it", 550, "unknown")
	if err := send(s, "c@example.it", body); code(err) != 550 {
		t.Fatalf("rejected recipient: %v", err)
	}
	if err := send(s, "d@example.it", body); err != nil {
		t.Fatalf("other recipient: %v", err)
	}

	s.Fail(Data, 554, "no", 0)
	for range 2 {
		if err := send(s, "b@example.it", body); code(err) != 554 {
			t.Fatalf("DATA: %v", err)
		}
	}
	s.Clear()

	// A stalled command resumes on Clear.
	s.Stall(Mail)
	done := make(chan error, 1)
	go func() { done <- send(s, "e@example.it", body) }()
	select {
	case err := <-done:
		t.Fatalf("stalled MAIL returned: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	s.Clear()
	if err := <-done; err != nil {
		t.Fatalf("after Clear: %v", err)
	}

	msgs := s.WaitMessages(3, time.Second)
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	if msgs[0].From != "a@example.it" || msgs[0].To[0] != "b@example.it" || !bytes.Equal(msgs[0].Data, []byte(body)) {
		t.Fatalf("message = %+v", msgs[0])
	}
	s.Reset()
	if len(s.Messages()) != 0 {
		t.Fatal("Reset kept messages")
	}
	s.Close()
	if err := send(s, "b@example.it", body); err == nil {
		t.Fatal("closed server accepted a message")
	}
}
