package secret

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestKeyFilePermissions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	created, err := CreateKey(p)
	if err != nil || !created {
		t.Fatal(err)
	}
	if _, err := ReadKey(p); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o640)
	if _, err := ReadKey(p); !errors.Is(err, ErrPermissions) {
		t.Fatalf("ReadKey on 0640 = %v, want ErrPermissions", err)
	}
	if created, _ := CreateKey(p); created {
		t.Fatal("CreateKey overwrote an existing key")
	}
}
