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
// checksum; v3 the directories.
const magic = "bkcstat3"

// sumSize is the length of the SHA-256 checksum that ends every cache
// file, over everything before it: a torn, truncated or flipped file
// never decodes, so it can never give a wrong digest.
const sumSize = sha256.Size

// minEntry is the smallest encoded entry: a one-byte path with its
// length, six one-byte varints and the digest; minDir the smallest
// directory: a one-byte path with its length, six varints and an empty
// list of names.
const (
	minEntry = 1 + 1 + 6 + 32
	minDir   = 1 + 1 + 6 + 1
)

// Contents is what one cache file holds.
type Contents struct {
	Dir   string           // the source directory
	Files map[string]Entry // by slash-separated path
	Dirs  map[string]Dir   // by relative path, "." for the root
}

// Encode serializes c: the magic, c.Dir, the file count, then each file
// by path order as path, its identity (size, mtime, ctime, inode, device,
// mode as varints) and the 32-byte digest, then the directory count and
// each directory by path order as path, identity and names, then the
// checksum.
func Encode(c Contents) []byte {
	b := make([]byte, 0, len(magic)+len(c.Dir)+16+len(c.Files)*(minEntry+48)+len(c.Dirs)*(minDir+64)+sumSize)
	b = append(b, magic...)
	b = appendString(b, c.Dir)
	b = binary.AppendUvarint(b, uint64(len(c.Files)))
	for _, p := range slices.Sorted(maps.Keys(c.Files)) {
		e := c.Files[p]
		b = appendIdentity(appendString(b, p), e.ID)
		b = append(b, e.Digest[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Dirs)))
	for _, p := range slices.Sorted(maps.Keys(c.Dirs)) {
		d := c.Dirs[p]
		b = appendString(appendIdentity(appendString(b, p), d.ID), d.Names)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func appendIdentity(b []byte, id source.Identity) []byte {
	b = binary.AppendVarint(b, id.Size)
	b = binary.AppendVarint(b, id.Mtime)
	b = binary.AppendVarint(b, id.Ctime)
	b = binary.AppendUvarint(b, id.Ino)
	b = binary.AppendUvarint(b, id.Dev)
	return binary.AppendUvarint(b, uint64(id.Mode))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errCorrupt reports a cache file that is not one Encode wrote.
var errCorrupt = errors.New("corrupt stat cache")

// Decode reads what Encode wrote. Any other input is an error, never a
// panic or an allocation larger than the input.
func Decode(data []byte) (Contents, error) {
	var c Contents
	if !strings.HasPrefix(string(data), magic) {
		if strings.HasPrefix(string(data), magic[:len(magic)-1]) {
			return c, fmt.Errorf("%w: written by another bkcache release", errCorrupt)
		}
		return c, fmt.Errorf("%w: not a bkcache stat cache", errCorrupt)
	}
	if len(data) < len(magic)+sumSize {
		return c, fmt.Errorf("%w: truncated", errCorrupt)
	}
	body, sum := data[:len(data)-sumSize], data[len(data)-sumSize:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return c, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", errCorrupt)
	}
	r := reader{b: body[len(magic):]}
	c.Dir = r.string()
	var err error
	if c.Files, err = decodeMap(&r, minEntry, "entry", decodeFile); err != nil {
		return Contents{}, err
	}
	if c.Dirs, err = decodeMap(&r, minDir, "directory", decodeDir); err != nil {
		return Contents{}, err
	}
	if len(r.b) != 0 {
		return Contents{}, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return c, nil
}

// decodeMap reads a count, then that many records by strictly ascending,
// non-empty path, each read by one, which reports whether it is valid;
// min is the smallest encoded record, which bounds the count by what is
// left of the input.
func decodeMap[T any](r *reader, min int, what string, one func(*reader) (T, bool)) (map[string]T, error) {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)/min) {
		return nil, fmt.Errorf("%w: bad %s count", errCorrupt, what)
	}
	out := make(map[string]T, n)
	prev := ""
	for i := range n {
		p := r.string()
		v, ok := one(r)
		if r.err != nil || !ok || p == "" || (i > 0 && p <= prev) {
			return nil, fmt.Errorf("%w: %s %d", errCorrupt, what, i)
		}
		out[p] = v
		prev = p
	}
	return out, nil
}

func decodeFile(r *reader) (Entry, bool) {
	e := Entry{ID: r.identity()}
	copy(e.Digest[:], r.next(32))
	return e, true
}

func decodeDir(r *reader) (Dir, bool) {
	d := Dir{ID: r.identity(), Names: r.string()}
	return d, validNames(d.Names)
}

// validNames reports whether names is what joinNames makes: names in
// strictly ascending order, none empty, ".", ".." or holding a slash.
func validNames(names string) bool {
	if names == "" {
		return true
	}
	prev := ""
	for i, n := range strings.Split(names, nameSep) {
		if n == "" || n == "." || n == ".." || strings.Contains(n, "/") || (i > 0 && n <= prev) {
			return false
		}
		prev = n
	}
	return true
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

// identity reads what appendIdentity wrote; a mode wider than 32 bits is
// an error.
func (r *reader) identity() source.Identity {
	id := source.Identity{Size: r.varint(), Mtime: r.varint(), Ctime: r.varint(), Ino: r.uvarint(), Dev: r.uvarint()}
	mode := r.uvarint()
	if mode > 1<<32-1 {
		r.err = errCorrupt
	}
	id.Mode = uint32(mode)
	return id
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return ""
	}
	return string(r.next(int(n)))
}
