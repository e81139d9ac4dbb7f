package cades

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
)

// maxNesting bounds how deeply the elements of an envelope may nest. A CAdES
// envelope made by signing software nests 18 levels (certificate names inside
// the ESS attribute inside the signer info), a timestamped one about ten
// more; the CMS library re-encodes BER at a cost that grows with depth times
// size (a 240 KB envelope nested 60,000 deep takes it seconds), so a deeper
// envelope is refused before it reaches the library.
const maxNesting = 48

// unarmour returns the DER/BER bytes of a signature file: as they are when
// they start with a SEQUENCE tag, else decoded from PEM ("-----BEGIN PKCS7-----"
// and the like) or from bare base64, as some signing tools write .p7m files.
func unarmour(sig []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(sig)
	if len(trimmed) > 0 && trimmed[0] == 0x30 {
		return sig, nil
	}
	if b, _ := pem.Decode(trimmed); b != nil {
		return b.Bytes, nil
	}
	clean := make([]byte, 0, len(trimmed))
	for _, c := range trimmed {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			clean = append(clean, c)
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, errors.New("neither DER nor base64")
	}
	return out[:n], nil
}

// checkShape walks the tag and length headers of one BER element (never
// its values) and reports whether it is well formed and nests at most
// maxNesting levels. Bytes after the element may only be padding (NUL or
// white space), which some transfers add.
func checkShape(b []byte) error {
	type frame struct{ end int } // end of a definite container, or -1
	stack := make([]frame, 0, maxNesting)
	// bound is where the innermost definite container ends: no element, and
	// no end-of-contents of an indefinite container inside it, may cross it.
	bound := func() int {
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].end >= 0 {
				return stack[i].end
			}
		}
		return len(b)
	}
	pos := 0
	for {
		// Close finished containers.
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.end >= 0 {
				if pos > top.end {
					return errors.New("element overruns its container")
				}
				if pos < top.end {
					break
				}
			} else {
				if pos+2 > bound() {
					return errors.New("indefinite length without end-of-contents")
				}
				if b[pos] != 0 || b[pos+1] != 0 {
					break
				}
				pos += 2
			}
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 && pos > 0 {
			break
		}
		end := bound()
		constructed, length, hdr, err := readHeader(b[pos:end])
		if err != nil {
			return err
		}
		pos += hdr
		switch {
		case length < 0 && !constructed:
			return errors.New("indefinite length on a primitive element")
		case length < 0:
			stack = append(stack, frame{end: -1})
		case length > end-pos:
			return errors.New("length beyond the data")
		case constructed:
			stack = append(stack, frame{end: pos + length})
		default:
			pos += length
		}
		if len(stack) > maxNesting {
			return errors.New("nested too deeply")
		}
		if len(stack) == 0 {
			break
		}
	}
	for _, c := range b[pos:] {
		switch c {
		case 0, ' ', '\t', '\r', '\n':
		default:
			return errors.New("data after the envelope")
		}
	}
	return nil
}

// readHeader reads the identifier and length octets at the start of b. It
// returns length -1 for the indefinite form and hdr, the header's size.
func readHeader(b []byte) (constructed bool, length, hdr int, err error) {
	if len(b) < 2 {
		return false, 0, 0, errors.New("truncated element")
	}
	constructed = b[0]&0x20 != 0
	hdr = 1
	if b[0]&0x1f == 0x1f { // high tag number: base-128 digits
		for {
			if hdr >= len(b) || hdr > 4 {
				return false, 0, 0, errors.New("bad tag")
			}
			c := b[hdr]
			hdr++
			if c&0x80 == 0 {
				break
			}
		}
	}
	if hdr >= len(b) {
		return false, 0, 0, errors.New("truncated element")
	}
	l := b[hdr]
	hdr++
	switch {
	case l < 0x80:
		return constructed, int(l), hdr, nil
	case l == 0x80:
		return constructed, -1, hdr, nil
	}
	n := int(l & 0x7f)
	if n > 4 || hdr+n > len(b) {
		return false, 0, 0, errors.New("bad length")
	}
	for i := 0; i < n; i++ {
		length = length<<8 | int(b[hdr+i])
	}
	if length < 0 || length > 1<<30 {
		return false, 0, 0, errors.New("bad length")
	}
	return constructed, length, hdr + n, nil
}
