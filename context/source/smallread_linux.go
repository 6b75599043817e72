package source

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// smallReader reads a batch with one io_uring submission: for each file
// an open into a slot of the ring's descriptor table, a read of the whole
// file into its part of the arena, and a close, linked so that each
// starts once the one before it has finished.
type smallReader struct {
	d      *dirFS
	ring   *ring
	arena  []byte
	used   int
	names  []byte // the batch's paths, NUL-terminated, back to back
	files  []SmallFile
	res    []smallResult
	broken bool // the ring failed: read nothing more with it
}

type smallResult struct {
	openErr bool
	n       int32
}

// featLinkedFile is IORING_FEAT_LINKED_FILE (Linux 5.17): a linked read
// resolves its slot when it runs, after the open before it has filled it,
// rather than when it is submitted.
const featLinkedFile = 1 << 12

func newSmallReader(d *dirFS) *smallReader {
	r, err := newRing(3*smallBatch, smallBatch, featLinkedFile)
	if err != nil {
		return nil
	}
	return &smallReader{
		d: d, ring: r, arena: make([]byte, smallArena),
		files: make([]SmallFile, 0, smallBatch), res: make([]smallResult, smallBatch),
	}
}

// Add queues the file at path, expected to be size bytes, for the next
// Read. It reports false, queueing nothing, when size exceeds SmallMax,
// the batch is full, or the ring has failed (then always).
func (s *smallReader) Add(path string, size int64) bool {
	need := int(size) + 1 // a read that stops short of this reached the end
	if size < 0 || size > SmallMax || len(s.files) == smallBatch || s.used+need > len(s.arena) {
		return false
	}
	s.files = append(s.files, SmallFile{Path: path, Size: size, Data: s.arena[s.used : s.used+need]})
	s.used += need
	return true
}

// Len returns the number of files queued.
func (s *smallReader) Len() int { return len(s.files) }

// Read reads the queued files and empties the queue. A file that could
// not be read whole, for whatever reason, comes back with Whole false:
// read it with Open, which reports the error as usual. The result is
// valid until the next Add.
func (s *smallReader) Read() []SmallFile {
	files := s.files
	s.files, s.used = s.files[:0], 0
	if len(files) == 0 {
		return nil
	}
	read := !s.broken && s.submit(files)
	for i := range files {
		if r := s.res[i]; read && !r.openErr && int64(r.n) == files[i].Size {
			files[i].Data, files[i].Whole = files[i].Data[:r.n], true
		} else {
			files[i].Data, files[i].Whole = nil, false
		}
	}
	return files
}

// testHookSubmit, when set (by tests), runs before each batch is
// submitted; tests break the ring there.
var testHookSubmit func(*smallReader)

func (s *smallReader) submit(files []SmallFile) bool {
	if testHookSubmit != nil {
		testHookSubmit(s)
	}
	s.names = s.names[:0]
	offs := make([]int, len(files))
	for i, f := range files {
		dirfd, name := s.d.at(f.Path)
		if dirfd != s.d.rootfd {
			return false // not below the root: leave it to Open
		}
		offs[i] = len(s.names)
		s.names = append(append(s.names, name...), 0)
	}
	for i, f := range files {
		slot := uint32(i)
		o := s.ring.next()
		o.opcode, o.flags, o.fd = opOpenat, sqeHardlink, int32(s.d.rootfd)
		o.addr = uint64(uintptr(unsafe.Pointer(&s.names[offs[i]])))
		o.opFlags = unix.O_RDONLY | unix.O_NOFOLLOW // direct descriptors take no O_CLOEXEC
		o.fileIndex = slot + 1
		o.userData = uint64(i) << 2
		r := s.ring.next()
		r.opcode, r.flags, r.fd = opRead, sqeFixedFile|sqeHardlink, int32(slot)
		r.addr, r.len = uint64(uintptr(unsafe.Pointer(&f.Data[0]))), uint32(len(f.Data))
		r.userData = uint64(i)<<2 | 1
		c := s.ring.next()
		c.opcode, c.fileIndex = opClose, slot+1
		c.userData = uint64(i)<<2 | 2
		s.res[i] = smallResult{}
	}
	err := s.ring.submitAndWait(3*len(files), func(c *cqe) {
		i := c.userData >> 2
		switch c.userData & 3 {
		case 0:
			s.res[i].openErr = c.res < 0
		case 1:
			s.res[i].n = c.res
		}
	})
	runtime.KeepAlive(s.d) // its root descriptor
	if err != nil {
		// Reads may still be in flight into the arena, and opens may
		// still read the names: never let either be reused.
		s.broken = true
		abandon(s.arena)
		abandon(s.names)
		s.arena, s.names = nil, nil
		return false
	}
	return true
}

// Close releases the ring.
func (s *smallReader) Close() { s.ring.close() }
