package tree

import (
	"sync"

	"github.com/bkcache/bkcache/context/source"
	"github.com/zeebo/blake3"
)

// smallReaderFS is an FS that can read small files in batches
// (source.View is one, on Linux).
type smallReaderFS interface {
	SmallReader() *source.SmallReader
}

// worker digests the regular files it is handed. Small files wait in a
// batch (when the FS can read batches) until it is full or no more files
// are waiting; the others stream through its scratch buffer.
type worker struct {
	fsys   FS
	idf    Identifier // nil: no cache
	cache  Cache
	srf    smallReaderFS       // where small comes from; nil: nowhere
	nsmall int                 // small files seen before small existed
	small  *source.SmallReader // nil: stream every file
	queued []pending           // the files in small's batch, in order
	sc     *scratch            // nil until a file is read
	sum    []byte
}

// scratch is what a worker reads and digests files with. A worker takes
// one from the pool when it first reads a file: a walk whose files all
// come from the stat cache (a warm run) takes none. A warm hash of 200
// services on one context made 600 workers, and their buffers were 13%
// of its CPU time.
type scratch struct {
	buf []byte
	h   *blake3.Hasher
}

var scratches = sync.Pool{New: func() any { return &scratch{buf: make([]byte, readBufSize), h: newHasher()} }}

// scratch returns w's scratch, taking one from the pool first.
func (w *worker) scratch() *scratch {
	if w.sc == nil {
		w.sc = scratches.Get().(*scratch)
	}
	return w.sc
}

// pending is a file waiting for its digest, with the identity the walk
// saw, for the cache.
type pending struct {
	e     *Entry
	id    source.Identity
	known bool
}

func newWorker(fsys FS, idf Identifier, cache Cache) *worker {
	w := &worker{fsys: fsys, idf: idf, cache: cache}
	w.srf, _ = fsys.(smallReaderFS)
	return w
}

// run digests the files from jobs until it is closed.
func (w *worker) run(jobs <-chan *Entry) error {
	defer func() {
		if w.small != nil {
			w.small.Close()
		}
		if w.sc != nil {
			scratches.Put(w.sc)
		}
	}()
	for {
		var e *Entry
		var ok bool
		select {
		case e, ok = <-jobs:
		default:
			// Nothing is waiting: read the batch now rather than hold it.
			if err := w.flush(); err != nil {
				return err
			}
			e, ok = <-jobs
		}
		if !ok {
			return w.flush()
		}
		if err := w.take(e); err != nil {
			return err
		}
	}
}

func (w *worker) take(e *Entry) error {
	p := pending{e: e}
	if w.cache != nil {
		if p.id, p.known = w.idf.Identity(e.Path); p.known {
			if d, ok := w.cache.Lookup(e.Path, p.id); ok {
				e.Digest = d
				return nil
			}
		}
	}
	if e.Size > source.SmallMax || !w.batching() {
		return w.stream(p)
	}
	if !w.small.Add(e.Path, e.Size) {
		if err := w.flush(); err != nil {
			return err
		}
		if !w.small.Add(e.Path, e.Size) {
			return w.stream(p) // the reader is broken
		}
	}
	w.queued = append(w.queued, p)
	return nil
}

// batching reports whether small files go into batches. A worker sets
// up its batch reader (an io_uring ring) only once it has streamed a
// batch's worth of small files: a setup costs as much as streaming a few
// dozen, and most sources of a compose project are small.
func (w *worker) batching() bool {
	if w.small != nil {
		return true
	}
	if w.srf == nil {
		return false
	}
	if w.nsmall++; w.nsmall <= smallAfter {
		return false
	}
	w.small = w.srf.SmallReader()
	w.srf = nil // once, whether or not there is one
	return w.small != nil
}

// smallAfter is how many small files a worker streams before it batches.
const smallAfter = 32

// flush reads the batch and digests its files; one that was not read
// whole (it changed since the walk, or could not be read) streams, which
// also reports any error.
func (w *worker) flush() error {
	if w.small == nil || w.small.Len() == 0 {
		return nil
	}
	for i, f := range w.small.Read() {
		p := w.queued[i]
		if !f.Whole {
			if err := w.stream(p); err != nil {
				return err
			}
			continue
		}
		h := w.scratch().h
		h.Reset()
		h.Write(f.Data)
		p.e.Size = int64(len(f.Data))
		w.finish(p)
	}
	w.queued = w.queued[:0]
	return nil
}

func (w *worker) stream(p pending) error {
	sc := w.scratch()
	sc.h.Reset()
	if err := digestFile(w.fsys, p.e, sc.h, sc.buf); err != nil {
		return err
	}
	w.finish(p)
	return nil
}

// finish records the digest of what w's hasher was fed, and teaches the
// cache.
func (w *worker) finish(p pending) {
	w.sum = w.sc.h.Sum(w.sum[:0])
	p.e.Digest = ContentDigest(w.sum)
	if p.known && p.e.Size == p.id.Size {
		w.cache.Store(p.e.Path, p.id, p.e.Digest)
	}
}
