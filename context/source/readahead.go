package source

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// readAhead lists directories ahead of a walk, on other cores: the walk
// itself is sequential (lexical order, for the filter), and on a tree of
// small directories its time is the listing and lstat syscalls of one
// directory after another. Workers take the most recently discovered
// directory first, which is the walk's own depth-first order, so they
// stay just ahead of it. At most maxAhead listings wait to be walked: a
// directory the walk skips (an ignored node_modules) costs that much
// read-ahead at most.
type readAhead struct {
	read func(rel string) ([]*entry, error)

	mu      sync.Mutex
	cond    sync.Cond
	pending map[string]*listing // claimed: being read, or read and not yet walked
	stack   []string            // discovered, not claimed; top is next
	closed  bool
}

// listing is one directory's children.
type listing struct {
	done     chan struct{}
	children []*entry
	err      error
}

const maxAhead = 256

func newReadAhead(read func(string) ([]*entry, error), workers int) *readAhead {
	r := &readAhead{read: read, pending: map[string]*listing{}}
	r.cond.L = &r.mu
	for range workers {
		go r.work()
	}
	return r
}

// close stops the workers once they finish what they are reading.
func (r *readAhead) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cond.Broadcast()
}

func (r *readAhead) work() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for !r.closed && (len(r.stack) == 0 || len(r.pending) >= maxAhead) {
			r.cond.Wait()
		}
		if r.closed {
			return
		}
		rel := r.stack[len(r.stack)-1]
		r.stack = r.stack[:len(r.stack)-1]
		if _, ok := r.pending[rel]; ok {
			continue // the walk got there first
		}
		l := &listing{done: make(chan struct{})}
		r.pending[rel] = l
		r.mu.Unlock()
		r.fill(l, rel)
		r.mu.Lock()
	}
}

// fill reads rel into l and announces its subdirectories, last first so
// that the first is on top.
func (r *readAhead) fill(l *listing, rel string) {
	l.children, l.err = r.read(rel)
	close(l.done)
	r.mu.Lock()
	for i := len(l.children) - 1; i >= 0; i-- {
		if c := l.children[i]; c.IsDir() {
			r.stack = append(r.stack, c.rel)
		}
	}
	r.mu.Unlock()
	r.cond.Broadcast()
}

// list returns the children of rel: read ahead, or read now.
func (r *readAhead) list(rel string) ([]*entry, error) {
	r.mu.Lock()
	l, ok := r.pending[rel]
	if !ok {
		l = &listing{done: make(chan struct{})}
		r.pending[rel] = l
		r.mu.Unlock()
		r.fill(l, rel)
	} else {
		r.mu.Unlock()
		<-l.done
	}
	r.mu.Lock()
	delete(r.pending, rel)
	r.mu.Unlock()
	r.cond.Broadcast()
	return l.children, l.err
}

// skip forgets what was read or announced of rel and below it, which the
// walk will not visit, so that it does not hold the read-ahead window.
func (r *readAhead) skip(rel string) {
	prefix := rel + string(filepath.Separator)
	r.mu.Lock()
	for p := range r.pending {
		if p == rel || strings.HasPrefix(p, prefix) {
			delete(r.pending, p)
		}
	}
	r.stack = slices.DeleteFunc(r.stack, func(p string) bool { return p == rel || strings.HasPrefix(p, prefix) })
	r.mu.Unlock()
	r.cond.Broadcast()
}
