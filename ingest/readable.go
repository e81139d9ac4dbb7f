package ingest

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path"
	"strings"
)

// readableAs reports whether the local copy of a file called name is whole
// as what its name says, as far as its format tells: a .xlsx is a zip
// whose central directory (written last) can be read; a .p7m is a complete
// DER or BER element, bare or in PEM or base64. Other names (.csv) carry
// no mark of their end and are readable.
func readableAs(name, local string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".xlsx":
		z, err := zip.OpenReader(local)
		if err != nil {
			return false
		}
		z.Close()
		return true
	case ".p7m":
		data, err := os.ReadFile(local)
		return err == nil && wholeEnvelope(data)
	}
	return true
}

// wholeEnvelope reports whether data holds one whole ASN.1 element: its
// definite length fits in data, or its indefinite length is closed by
// end-of-contents octets at the end of data. PEM and bare base64 (as some
// signing tools write .p7m files) are decoded first; a cut base64 text
// does not decode.
func wholeEnvelope(data []byte) bool {
	// DER is binary: its last bytes may be a tab or a space, so only the
	// text forms are trimmed.
	b := data
	if len(b) == 0 || b[0] != 0x30 {
		b = bytes.TrimSpace(data)
	}
	if len(b) > 0 && b[0] != 0x30 {
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		} else {
			clean := strings.Join(strings.Fields(string(b)), "")
			dec, err := base64.StdEncoding.DecodeString(clean)
			if err != nil {
				return false
			}
			b = dec
		}
	}
	if len(b) < 2 || b[0] != 0x30 {
		return false
	}
	l := b[1]
	switch {
	case l < 0x80:
		return 2+int(l) <= len(b)
	case l == 0x80:
		return bytes.HasSuffix(b, []byte{0, 0})
	}
	n := int(l & 0x7f)
	if n > 4 || 2+n > len(b) {
		return false
	}
	length := 0
	for _, c := range b[2 : 2+n] {
		length = length<<8 | int(c)
	}
	return 2+n+length <= len(b)
}
