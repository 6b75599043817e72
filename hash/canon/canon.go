// Package canon owns the canonical byte encoding that every bkcache hash is
// computed over.
//
// The encoding is a flat sequence of fields. Each field is a one-byte tag,
// an unsigned varint length and that many bytes, so no two different
// sequences of fields encode to the same bytes, whatever the fields hold
// (paths with newlines, empty strings, NUL bytes). Each hash starts with a
// scheme field (for example "bkcache/v2") so that a change of encoding never
// collides with an old one.
package canon

import (
	"encoding/binary"
	"io"
)

// Tag says what a field holds. Tags are part of the encoding: never renumber.
type Tag byte

// Field tags. Values are stable across releases; add new ones at the end.
const (
	TagScheme Tag = iota + 1
	TagString
	TagUint
	TagBytes
	TagBegin // opens a named group, such as one source or one file
	TagEnd   // closes the group opened last
)

// Writer appends fields to an io.Writer, typically a hash.Hash. The first
// write error is kept and returned by Err; later writes are no-ops.
type Writer struct {
	w   io.Writer
	buf []byte // one field, reused: each field is a single Write, without allocating
	err error
}

// NewWriter returns a Writer that encodes onto w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (e *Writer) field(t Tag, s string) {
	e.buf = append(e.header(t, len(s)), s...)
	e.write()
}

func (e *Writer) fieldBytes(t Tag, b []byte) {
	e.buf = append(e.header(t, len(b)), b...)
	e.write()
}

func (e *Writer) header(t Tag, n int) []byte {
	return binary.AppendUvarint(append(e.buf[:0], byte(t)), uint64(n))
}

func (e *Writer) write() {
	if e.err == nil {
		_, e.err = e.w.Write(e.buf)
	}
}

// Scheme writes the scheme tag that must open every encoding.
func (e *Writer) Scheme(s string) { e.field(TagScheme, s) }

// String writes a string field.
func (e *Writer) String(s string) { e.field(TagString, s) }

// Bytes writes a byte-string field.
func (e *Writer) Bytes(b []byte) { e.fieldBytes(TagBytes, b) }

// Uint writes an unsigned integer field.
func (e *Writer) Uint(u uint64) {
	var b [binary.MaxVarintLen64]byte
	e.fieldBytes(TagUint, b[:binary.PutUvarint(b[:], u)])
}

// Begin opens a group named name; End closes it.
func (e *Writer) Begin(name string) { e.field(TagBegin, name) }

// End closes the group opened last.
func (e *Writer) End() { e.field(TagEnd, "") }

// Strings writes a count followed by each string, so that lists of
// different lengths never run into the fields that follow them.
func (e *Writer) Strings(ss []string) {
	e.Uint(uint64(len(ss)))
	for _, s := range ss {
		e.String(s)
	}
}

// Err returns the first error met while writing.
func (e *Writer) Err() error { return e.err }
