package source

import (
	"os"
	"sync"
)

// SmallReader reads small regular files whole, a batch of them per
// system call: on a tree of many small files, the open, read and close
// calls of each file cost more than reading its bytes, and this machine
// kind pays about a microsecond to enter the kernel. On Linux it batches
// with io_uring; elsewhere, or where io_uring is unavailable (an old
// kernel, a seccomp profile that blocks it, BKCACHE_IO_URING=0), the
// View has none and callers read with Open.
//
// A SmallReader is not safe for concurrent use: give each goroutine its
// own. It reads only paths the View's walk reported, without checking
// them against the filter again as Open does.
type SmallReader struct {
	*smallReader
}

// SmallFile is a file read by a batch.
type SmallFile struct {
	Path  string
	Size  int64  // the size the caller expected: what the walk saw
	Data  []byte // what was read; valid until the next Read
	Whole bool   // Data is the whole file, read to its end at Size bytes
}

// SmallMax is the largest file a SmallReader takes: larger files take
// one read per 256 KiB anyway, so batching saves them little.
const SmallMax = 64 << 10

const (
	smallBatch = 32        // files per batch
	smallArena = 512 << 10 // bytes per batch: the files stay in cache between the read and the hashing
)

// SmallReader returns a batch reader for v's files, or nil if there is
// none on this system. Close it after use.
func (v *View) SmallReader() *SmallReader {
	if v.base == nil || !smallReadersEnabled() {
		return nil
	}
	r := newSmallReader(v.base)
	if r == nil {
		return nil
	}
	return &SmallReader{r}
}

var smallReadersEnabled = sync.OnceValue(func() bool { return os.Getenv("BKCACHE_IO_URING") != "0" })

// abandoned keeps buffers the kernel may still write to after a ring
// failed mid-batch, so that the garbage collector never hands them out
// again.
var abandoned struct {
	sync.Mutex
	bufs [][]byte
}

func abandon(b []byte) {
	abandoned.Lock()
	abandoned.bufs = append(abandoned.bufs, b)
	abandoned.Unlock()
}
