package canon

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Field is one decoded field.
type Field struct {
	Tag   Tag
	Value []byte
}

// ErrTruncated reports an encoding that ends inside a field.
var ErrTruncated = errors.New("canon: truncated field")

// ErrNonCanonical reports a length written with more bytes than its
// varint needs: no Writer writes one, so no hash was computed over it.
var ErrNonCanonical = errors.New("canon: non-minimal field length")

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// Decode splits an encoding back into its fields, to prove the encoding
// unambiguous (tests and fuzzing).
// It accepts exactly what a Writer writes: re-encoding its fields gives
// the input back, byte for byte.
func Decode(b []byte) ([]Field, error) {
	var out []Field
	for len(b) > 0 {
		t := Tag(b[0])
		if t < TagScheme || t > TagEnd {
			return nil, fmt.Errorf("canon: unknown tag %d", t)
		}
		n, k := binary.Uvarint(b[1:])
		if k <= 0 {
			return nil, ErrTruncated
		}
		if k != uvarintLen(n) {
			return nil, ErrNonCanonical
		}
		b = b[1+k:]
		if n > uint64(len(b)) {
			return nil, ErrTruncated
		}
		out = append(out, Field{Tag: t, Value: b[:n]})
		b = b[n:]
	}
	return out, nil
}
