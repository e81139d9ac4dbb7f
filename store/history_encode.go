package store

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strconv"
	"sync"
	"time"
)

// The history entries and the pseudonyms' mappings of a census are written
// by the hundred thousand: their JSON is appended here, field by field,
// byte for byte as encoding/json writes it (the tests compare the two), and
// each entry's hash is computed with a reused SHA-256.

// appendEntryJSON appends the JSON of e, as json.Marshal gives it.
func appendEntryJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"time":`...)
	b = appendJSONTime(b, e.Time)
	b = append(b, `,"actor":`...)
	b = appendJSONString(b, e.Actor)
	b = append(b, `,"action":`...)
	b = appendJSONString(b, e.Action)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, e.Kind)
	b = append(b, `,"key":`...)
	b = appendJSONString(b, e.Key)
	if e.File != "" {
		b = append(b, `,"file":`...)
		b = appendJSONString(b, e.File)
	}
	if e.Sheet != "" {
		b = append(b, `,"sheet":`...)
		b = appendJSONString(b, e.Sheet)
	}
	if e.Row != 0 {
		b = append(b, `,"row":`...)
		b = strconv.AppendInt(b, int64(e.Row), 10)
	}
	if e.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, e.Detail)
	}
	return append(b, '}')
}

// pseudonymJSON returns the JSON of p, as json.Marshal gives it.
func pseudonymJSON(p *pseudonym) []byte {
	if p.Salt == nil {
		b, _ := json.Marshal(p)
		return b
	}
	b := make([]byte, 0, 16+len(p.Token)+len(p.Value)+base64.StdEncoding.EncodedLen(len(p.Salt)))
	b = append(b, '{')
	if p.Token != "" {
		b = append(b, `"t":`...)
		b = appendJSONString(b, p.Token)
		b = append(b, ',')
	}
	if p.Value != "" {
		b = append(b, `"v":`...)
		b = appendJSONString(b, p.Value)
		b = append(b, ',')
	}
	b = append(b, `"s":"`...)
	b = base64.StdEncoding.AppendEncode(b, p.Salt)
	return append(b, `"}`...)
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds, quoted); a time MarshalJSON refuses (jsonTime) is written
// as json.Marshal of the entry would fail: never, for the transaction
// times written here.
func appendJSONTime(b []byte, t time.Time) []byte {
	if !jsonTime(t) {
		j, _ := json.Marshal(t)
		return append(b, j...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// jsonTime reports whether time.Time's MarshalJSON writes t: its year is
// within 0-9999 and its offset from UTC under a day.
func jsonTime(t time.Time) bool {
	_, off := t.Zone()
	y := t.Year()
	return y >= 0 && y <= 9999 && off > -24*3600 && off < 24*3600
}

// appendJSONString appends s quoted as encoding/json quotes it: a string
// of plain printable ASCII as it is, any other through encoding/json (its
// escapes of HTML characters, control characters, invalid UTF-8 and line
// separators).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

var chainHashers = sync.Pool{New: func() any { return sha256.New() }}

// appendChainHash appends chainHash(prev, body) to b.
func appendChainHash(b, prev, body []byte) []byte {
	h := chainHashers.Get().(hash.Hash)
	h.Reset()
	h.Write(prev)
	h.Write(body)
	b = h.Sum(b)
	chainHashers.Put(h)
	return b
}

// drawnToken is pseudoToken(salt, value) for a salt of at most a SHA-256
// block (a drawn one: 16 bytes), computed as HMAC is defined, with two
// reused SHA-256 states instead of hmac.New's.
func drawnToken(salt []byte, value string) string {
	const block = 64
	if len(salt) > block {
		return pseudoToken(salt, value)
	}
	var pad [block]byte
	inner := chainHashers.Get().(hash.Hash)
	outer := chainHashers.Get().(hash.Hash)
	inner.Reset()
	outer.Reset()
	for i := range pad {
		pad[i] = 0x36
		if i < len(salt) {
			pad[i] ^= salt[i]
		}
	}
	inner.Write(pad[:])
	inner.Write([]byte(value))
	var sum [sha256.Size]byte
	for i := range pad {
		pad[i] = 0x5c
		if i < len(salt) {
			pad[i] ^= salt[i]
		}
	}
	outer.Write(pad[:])
	outer.Write(inner.Sum(sum[:0]))
	mac := outer.Sum(sum[:0])
	chainHashers.Put(inner)
	chainHashers.Put(outer)
	var b [len(PseudonymPrefix) + 16]byte
	copy(b[:], PseudonymPrefix)
	pseudoEnc.Encode(b[len(PseudonymPrefix):], mac[:10])
	return string(b[:])
}
