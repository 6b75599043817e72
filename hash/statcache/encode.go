package statcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/context/source"
)

// magic starts every cache file; a format change needs a new one (old
// files are then ignored, which only costs one cold hash). v2 added the
// checksum.
const magic = "bkcstat2"

// sumSize is the length of the SHA-256 checksum that ends every cache
// file, over everything before it: a torn, truncated or flipped file
// never decodes, so it can never give a wrong digest.
const sumSize = sha256.Size

// minEntry is the smallest encoded entry: a one-byte path with its
// length, six one-byte varints and the digest.
const minEntry = 1 + 1 + 6 + 32

// Encode serializes the cache of source directory dir: the magic, dir,
// the entry count, then each entry by path order as path, size, mtime,
// ctime, inode, device, mode (varints) and the 32-byte digest, then the
// checksum.
func Encode(dir string, entries map[string]Entry) []byte {
	b := make([]byte, 0, len(magic)+len(dir)+8+len(entries)*(minEntry+48)+sumSize)
	b = append(b, magic...)
	b = appendString(b, dir)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, p := range slices.Sorted(maps.Keys(entries)) {
		e := entries[p]
		b = appendString(b, p)
		b = binary.AppendVarint(b, e.ID.Size)
		b = binary.AppendVarint(b, e.ID.Mtime)
		b = binary.AppendVarint(b, e.ID.Ctime)
		b = binary.AppendUvarint(b, e.ID.Ino)
		b = binary.AppendUvarint(b, e.ID.Dev)
		b = binary.AppendUvarint(b, uint64(e.ID.Mode))
		b = append(b, e.Digest[:]...)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errCorrupt reports a cache file that is not one Encode wrote.
var errCorrupt = errors.New("corrupt stat cache")

// Decode reads what Encode wrote. Any other input is an error, never a
// panic or an allocation larger than the input.
func Decode(data []byte) (dir string, entries map[string]Entry, err error) {
	if !strings.HasPrefix(string(data), magic) {
		if strings.HasPrefix(string(data), magic[:len(magic)-1]) {
			return "", nil, fmt.Errorf("%w: written by another bkcache release", errCorrupt)
		}
		return "", nil, fmt.Errorf("%w: not a bkcache stat cache", errCorrupt)
	}
	if len(data) < len(magic)+sumSize {
		return "", nil, fmt.Errorf("%w: truncated", errCorrupt)
	}
	body, sum := data[:len(data)-sumSize], data[len(data)-sumSize:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return "", nil, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", errCorrupt)
	}
	r := reader{b: body[len(magic):]}
	dir = r.string()
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)/minEntry) {
		return "", nil, fmt.Errorf("%w: bad header", errCorrupt)
	}
	entries = make(map[string]Entry, n)
	prev := ""
	for i := range n {
		p := r.string()
		var e Entry
		e.ID = source.Identity{Size: r.varint(), Mtime: r.varint(), Ctime: r.varint(), Ino: r.uvarint(), Dev: r.uvarint()}
		mode := r.uvarint()
		e.ID.Mode = uint32(mode)
		copy(e.Digest[:], r.next(32))
		if r.err != nil || mode > 1<<32-1 || p == "" || (i > 0 && p <= prev) {
			return "", nil, fmt.Errorf("%w: entry %d", errCorrupt, i)
		}
		entries[p] = e
		prev = p
	}
	if len(r.b) != 0 {
		return "", nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return dir, entries, nil
}

// reader consumes a byte slice, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errCorrupt
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return ""
	}
	return string(r.next(int(n)))
}
