package inputs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"maps"
)

// RedactKeyEnv names the environment variable that holds the key of a
// Redaction: a CI secret, never written anywhere by bkcache.
const RedactKeyEnv = "BKCACHE_REDACT_KEY"

// Redaction names build args whose values must not be recoverable from
// what bkcache records. A record is readable by anyone who can pull the
// image, and holds every input but those values: with a plain digest of
// a value, or with the value inside the hash, a low-entropy value is
// found by trying guesses. With a key, the inputs hold HMAC-SHA256 of the
// value under it instead of the value, and the hash covers that MAC: no
// guess can be checked without the key, and runs with the same key still
// tell whether the value changed (and skip when it did not). Without a
// key the hash must cover the value itself (a changed value must never
// skip), and records store only that it is redacted.
type Redaction struct {
	Args []string
	key  []byte
	id   string // names the key in what it stores; reveals nothing of it
}

// NewRedaction redacts the named args under key ("" for none).
func NewRedaction(args []string, key string) Redaction {
	r := Redaction{Args: args}
	if key != "" {
		r.key = []byte(key)
		r.id = hex.EncodeToString(r.mac("bkcache redact key id")[:6])
	}
	return r
}

// Stored forms of a redacted value.
const (
	KeyedPrefix = "redacted:hmac-sha256:" // then the key's id, ":", the MAC
	Bare        = "redacted"              // no key: nothing of the value
)

// Keyed reports whether values are redacted under a key.
func (r Redaction) Keyed() bool { return r.key != nil }

// KeyID is the prefix of every value stored under r's key.
func (r Redaction) KeyID() string {
	if r.key == nil {
		return ""
	}
	return KeyedPrefix + r.id + ":"
}

func (r Redaction) mac(v string) []byte {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(v))
	return m.Sum(nil)
}

// Value is v as stored: its MAC under the key, or Bare without one.
func (r Redaction) Value(v string) string {
	if r.key == nil {
		return Bare
	}
	return r.KeyID() + hex.EncodeToString(r.mac(v))
}

// Inputs returns in as records store it: a copy whose named args are
// redacted. in is left as it is.
func (r Redaction) Inputs(in *Inputs) *Inputs {
	cp := *in
	cp.Args = maps.Clone(in.Args)
	for _, a := range r.Args {
		if v, ok := cp.Args[a]; ok && !isStored(r, v) {
			cp.Args[a] = r.Value(v)
		}
	}
	return &cp
}

// isStored reports whether v is already a value r stored (the inputs
// computed with a key hold the MAC already).
func isStored(r Redaction, v string) bool {
	return r.key != nil && len(v) == len(r.KeyID())+2*sha256.Size && v[:len(r.KeyID())] == r.KeyID()
}

// keyed replaces, with a key, each named arg of args by its MAC: what the
// inputs hold and the hash covers.
func (r Redaction) keyed(args map[string]string) map[string]string {
	if r.key == nil {
		return args
	}
	out := maps.Clone(args)
	for _, a := range r.Args {
		if v, ok := out[a]; ok {
			out[a] = r.Value(v)
		}
	}
	return out
}
