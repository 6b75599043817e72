package record

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/hash/inputs"
)

// legacyPrefix is what bkcache stored for a redacted arg before keyed
// redaction (see inputs.Redaction): a plain SHA-256 of the value. Such
// records are still compared (by hashing the current value, never
// stored), and the form is never written again.
const legacyPrefix = "redacted:sha256:"

// isRedacted reports whether v is a value as some redaction stored it.
func isRedacted(v string) bool {
	if v == inputs.Bare {
		return true
	}
	if rest, ok := strings.CutPrefix(v, inputs.KeyedPrefix); ok {
		id, mac, ok := strings.Cut(rest, ":")
		return ok && isHex(id, 12) && isHex(mac, 2*sha256.Size)
	}
	h, ok := strings.CutPrefix(v, legacyPrefix)
	return ok && isHex(h, 2*sha256.Size)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// scheme is what a stored redacted value was made with: its prefix and,
// for a keyed one, its key's id.
func scheme(v string) string {
	if rest, ok := strings.CutPrefix(v, inputs.KeyedPrefix); ok {
		id, _, _ := strings.Cut(rest, ":")
		return inputs.KeyedPrefix + id + ":"
	}
	if strings.HasPrefix(v, legacyPrefix) {
		return legacyPrefix
	}
	return v
}

// notComparable stands for a redacted value that cannot be compared with
// the other side: no key, or another key.
const notComparable = "redacted (not comparable: no " + inputs.RedactKeyEnv + ", or another key)"

// alike returns the redacted value stored as recorded, and other (a
// value as the user gives it, or as another record stores it) in the
// same form when red can make it: then equal means unchanged. Where it
// cannot, both become notComparable, so that neither a value nor a
// change that cannot be told is shown.
func alike(red inputs.Redaction, recorded, other string) (string, string) {
	switch {
	case isRedacted(other):
		if recorded != inputs.Bare && scheme(recorded) == scheme(other) {
			return recorded, other // the same key (or both legacy): comparable as stored
		}
	case strings.HasPrefix(recorded, legacyPrefix):
		sum := sha256.Sum256([]byte(other))
		return recorded, legacyPrefix + hex.EncodeToString(sum[:])
	case red.Keyed() && strings.HasPrefix(recorded, red.KeyID()):
		return recorded, red.Value(other)
	}
	return notComparable, notComparable
}

// RedactedArgs lists the args in stores redacted, sorted.
func RedactedArgs(in *inputs.Inputs) []string {
	var out []string
	for k, v := range in.Args {
		if isRedacted(v) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
