// Package tree computes the canonical digest of a set of files: the files
// of one build source after BuildKit's own include and exclude filtering.
//
// Each file enters the digest with its slash-separated relative path, its
// type, its permission bits (including setuid, setgid and sticky), its
// symlink target (links are never followed) and, for regular files, the
// BLAKE3 digest of its content. BLAKE3 rather than SHA-256 because content
// hashing is the whole cost of `bkcache hash` on a large context, and
// BLAKE3 runs about twice as fast per core (3.3 vs 1.7 GB/s on the CI
// machine); Bazel and Buck2 chose it for their file digests for the same
// reason. The tree and service digests over the canonical encoding stay
// SHA-256. `b3sum` prints the same file digests. Modification times, ownership and hard-link
// structure are left out: COPY resets ownership, and BuildKit's own cache
// keys ignore times, so including them would only cause needless rebuilds.
package tree

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/hash/canon"
	digest "github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil/types"
	"golang.org/x/sync/errgroup"
)

// ContentAlgorithm digests file contents. go-digest v1.0.0 does not know
// it, so file digests must never be passed to Digest.Validate.
const ContentAlgorithm = digest.Algorithm("blake3")

// ContentDigest returns the digest of a file whose BLAKE3-256 sum is sum,
// as "blake3:" and 64 hex digits. It is digest.NewDigestFromBytes with one
// allocation instead of four (that one formats with fmt.Sprintf): a large
// tree makes one for every file, read or found in the stat cache.
func ContentDigest(sum []byte) digest.Digest {
	const prefix = string(ContentAlgorithm) + ":"
	var b [len(prefix) + 2*32]byte
	copy(b[:], prefix)
	hex.Encode(b[len(prefix):], sum[:32])
	return digest.Digest(b[:])
}

// Scheme versions the tree encoding. Changing what a tree digest covers or
// how it is encoded requires a new scheme. v2: file contents by BLAKE3
// (v1 had SHA-256, and its digests were re-recorded without a bump).
const Scheme = "bkcache/tree/v2"

// FS is the view of a source that the hasher reads. fsutil.FS satisfies it;
// FromFS adapts an io/fs.FS (such as fstest.MapFS) for tests.
//
// Walk must report paths relative to the source root and, for symbolic
// links, an fs.FileInfo whose Sys is a *types.Stat carrying the link target.
type FS interface {
	Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error
	Open(path string) (io.ReadCloser, error)
}

// Entry is one file system object as it enters the digest.
type Entry struct {
	Path     string        // slash-separated, relative to the source root
	Type     Type          // file, dir, symlink, ...
	Perm     uint32        // permission bits: 0o7777 of the Unix mode
	Linkname string        // symlink target; empty for other types
	Size     int64         // regular files only
	Digest   digest.Digest // ContentAlgorithm digest of the content; regular files only

	enc string // the entry's encoding, once Seal made it
}

// Seal records each entry's canonical encoding in it, for the Digests of
// the many selections that share the entries: an entry must not change
// once sealed.
func Seal(entries []*Entry) {
	var buf bytes.Buffer
	w := canon.NewWriter(&buf)
	for _, e := range entries {
		buf.Reset()
		Encode(w, e)
		e.enc = buf.String()
	}
}

// Type is the kind of a file system object, as a stable one-letter code.
type Type byte

// Types of entries. The letters are part of the encoding.
const (
	TypeFile    Type = 'f'
	TypeDir     Type = 'd'
	TypeSymlink Type = 'l'
	TypeFIFO    Type = 'p'
	TypeDevice  Type = 'b'
	TypeChar    Type = 'c'
)

func (t Type) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeDevice:
		return "blockdev"
	case TypeChar:
		return "chardev"
	}
	return fmt.Sprintf("type(%q)", byte(t))
}

func typeOf(m fs.FileMode) (Type, error) {
	switch {
	case m.IsRegular():
		return TypeFile, nil
	case m.IsDir():
		return TypeDir, nil
	case m&fs.ModeSymlink != 0:
		return TypeSymlink, nil
	case m&fs.ModeNamedPipe != 0:
		return TypeFIFO, nil
	case m&fs.ModeCharDevice != 0:
		return TypeChar, nil
	case m&fs.ModeDevice != 0:
		return TypeDevice, nil
	}
	return 0, fmt.Errorf("unsupported file type %v", m.Type())
}

// unixPerm maps Go's mode bits to the portable 12 Unix permission bits.
func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// Options tune Hash.
type Options struct {
	// Workers is the number of files digested at once; zero means one
	// more than runtime.GOMAXPROCS(0), so that a core whose worker waits
	// on the kernel (a page fault, an open io_uring hands to its own
	// threads, a page not in cache) has another to run.
	Workers int
	// Cache, when set and the FS is an Identifier, supplies the digests
	// of files unchanged since they were last read, and learns new ones.
	Cache Cache
	// Skip, when set, leaves out the non-directory entries it reports
	// true for: files the walk reaches but no input depends on.
	Skip func(path string) bool
}

// Identifier is an FS that can tell what a regular file's identity was
// when its walk saw it (source.View is one).
type Identifier interface {
	Identity(path string) (source.Identity, bool)
}

// Cache remembers content digests by file identity. Implementations
// must be safe for concurrent use, and must only answer for an entry
// they are sure of (statcache refuses to record racily clean files).
type Cache interface {
	Lookup(path string, id source.Identity) (digest.Digest, bool)
	Store(path string, id source.Identity, d digest.Digest)
}

// Result is the digest of a tree and the entries behind it.
type Result struct {
	Digest  digest.Digest
	Entries []*Entry // sorted by Path
	Bytes   int64    // total size of the regular files read
}

// readBufSize is large enough that most files take one read, small
// enough that many workers stay cheap.
const readBufSize = 256 << 10

// Hash walks fsys and returns its canonical digest. Regular files are read
// in parallel by opt.Workers goroutines, streaming through a fixed buffer
// each, so memory does not grow with file size; where fsys can read small
// files in batches (a source.View on Linux), each worker reads those in
// batches instead.
func Hash(ctx context.Context, fsys FS, opt Options) (*Result, error) {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0) + 1
	}
	var entries []*Entry
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan *Entry, 4*workers)

	g.Go(func() error {
		defer close(jobs)
		return fsys.Walk(ctx, "", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("walking %s: %w", p, err)
			}
			if opt.Skip != nil && !d.IsDir() && opt.Skip(p) {
				return nil
			}
			e, err := entryOf(p, d)
			if err != nil {
				return err
			}
			entries = append(entries, e)
			if e.Type == TypeFile {
				select {
				case jobs <- e:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	})
	idf, _ := fsys.(Identifier)
	cache := opt.Cache
	if idf == nil {
		cache = nil
	}
	for range workers {
		g.Go(func() error { return newWorker(fsys, idf, cache).run(jobs) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// The walk's order is nearly this one. The entries stay where the
	// walk put them: copying them into one array costs more here in page
	// faults (10 us each on this VM) than the sort.
	slices.SortFunc(entries, func(a, b *Entry) int { return cmp.Compare(a.Path, b.Path) })
	res := &Result{Entries: entries}
	for _, e := range entries {
		res.Bytes += e.Size
	}
	res.Digest = Digest(res.Entries)
	return res, nil
}

func entryOf(p string, d fs.DirEntry) (*Entry, error) {
	info, err := d.Info()
	if err != nil {
		return nil, fmt.Errorf("reading metadata of %s: %w", p, err)
	}
	t, err := typeOf(info.Mode())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	e := &Entry{Path: filepath.ToSlash(p), Type: t, Perm: unixPerm(info.Mode())}
	switch t {
	case TypeFile:
		e.Size = info.Size()
	case TypeSymlink:
		st, ok := info.Sys().(*types.Stat)
		if !ok {
			return nil, fmt.Errorf("%s: symlink without a target in its metadata", p)
		}
		e.Linkname = st.Linkname
	}
	return e, nil
}

func digestFile(fsys FS, e *Entry, h io.Writer, buf []byte) error {
	rc, err := fsys.Open(e.Path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", e.Path, unwrapStack(err))
	}
	defer rc.Close()
	var n int64
	for {
		k, err := rc.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", e.Path, unwrapStack(err))
		}
		// A regular file reads short only at its end: once the size the
		// walk saw is reached, skip the extra read that would return EOF.
		// Syscalls dominate the cost of trees of small files.
		if k < len(buf) && n >= e.Size {
			break
		}
	}
	// The digest covers what was read; record that size.
	e.Size = n
	return nil
}

// unwrapStack drops github.com/pkg/errors' stack wrapper that fsutil adds,
// keeping the *fs.PathError users can read.
func unwrapStack(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe
	}
	return err
}

// Digest returns the canonical digest of entries, which must be sorted by
// Path. It is what Hash returns in Result.Digest.
func Digest(entries []*Entry) digest.Digest {
	return DigestAfter(nil, entries)
}

// State is the digest's running state after the scheme and the first
// entries of a list, for the many selections that start with the same
// entries (every service of a monorepo copying lib/ first): they go on
// from it rather than hash those entries again.
type State struct {
	b     []byte
	first []*Entry
}

// StateAfter returns the state after entries.
func StateAfter(entries []*Entry) *State {
	h := sha256.New()
	writeEntries(h, true, entries)
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err) // crypto/sha256 always can
	}
	return &State{b: b, first: entries}
}

// DigestAfter returns Digest(entries), going on from s where entries
// starts with the very entries s was made after (the same pointers); s
// may be nil.
func DigestAfter(s *State, entries []*Entry) digest.Digest {
	h := sha256.New()
	if s != nil && s.starts(entries) {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(s.b); err != nil {
			panic(err) // a state crypto/sha256 wrote itself
		}
		writeEntries(h, false, entries[len(s.first):])
	} else {
		writeEntries(h, true, entries)
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
}

func (s *State) starts(entries []*Entry) bool {
	if len(entries) < len(s.first) {
		return false
	}
	for i, e := range s.first {
		if entries[i] != e {
			return false
		}
	}
	return true
}

// writeEntries encodes entries onto h, after the scheme when scheme is
// set. Fields are a few bytes each: the hash takes them in blocks.
func writeEntries(h io.Writer, scheme bool, entries []*Entry) {
	bw := bufio.NewWriterSize(h, 32<<10)
	w := canon.NewWriter(bw)
	if scheme {
		w.Scheme(Scheme)
	}
	for _, e := range entries {
		if e.enc != "" {
			bw.WriteString(e.enc)
		} else {
			Encode(w, e)
		}
	}
	if w.Err() == nil {
		bw.Flush()
	}
	if w.Err() != nil {
		// A hash.Hash never fails a write; a Writer on one cannot either.
		panic(w.Err())
	}
}

// Encode writes one entry in its canonical form.
func Encode(w *canon.Writer, e *Entry) {
	w.Begin(string(e.Type))
	w.String(e.Path)
	w.Uint(uint64(e.Perm))
	switch e.Type {
	case TypeSymlink:
		w.String(e.Linkname)
	case TypeFile:
		w.String(e.Digest.String())
	}
	w.End()
}
