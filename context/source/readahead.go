package source

import (
	"container/heap"
	"path/filepath"
	"strings"
	"sync"
)

// readAhead lists directories ahead of a walk, on other cores: the walk
// itself is sequential (lexical order, for the filter), and on a tree of
// small directories its time is the listing and lstat syscalls of one
// directory after another. Workers take the discovered directory that
// comes first in the walk's own depth-first order, so that they stay just
// ahead of it. (Taking the most recently discovered one, a stack, is that
// order for one worker only: with two, the children of a sibling listed
// a moment later went first, and the walk ended up listing most
// directories itself.) At most maxAhead listings wait to be walked: a
// directory the walk skips (an ignored node_modules) costs that much
// read-ahead at most.
type readAhead struct {
	read func(rel string) ([]*entry, error)
	// ignored, when set, reports the directories the walk will skip
	// (see dirFS.ignored); they are not read ahead. It is called with mu
	// held.
	ignored func(rel string) bool

	mu      sync.Mutex
	cond    sync.Cond
	pending map[string]*listing // claimed: being read, or read and not yet walked
	claimed map[string]bool     // every directory read so far, by a worker or the walk
	next    walkOrder           // discovered, not claimed; a heap, first in walk order on top
	skipped map[string]bool     // directories the walk skipped: nothing below them is read
	closed  bool
}

// listing is one directory's children.
type listing struct {
	done     chan struct{}
	children []*entry
	err      error
}

const maxAhead = 256

func newReadAhead(read func(string) ([]*entry, error), ignored func(string) bool, workers int) *readAhead {
	r := &readAhead{read: read, ignored: ignored, pending: map[string]*listing{}, claimed: map[string]bool{}, skipped: map[string]bool{}}
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
		for !r.closed && (len(r.next) == 0 || len(r.pending) >= maxAhead) {
			r.cond.Wait()
		}
		if r.closed {
			return
		}
		rel := heap.Pop(&r.next).(string)
		if r.claimed[rel] || r.under(rel) {
			continue // read already (the walk got there first), or skipped
		}
		l := &listing{done: make(chan struct{})}
		r.pending[rel], r.claimed[rel] = l, true
		r.mu.Unlock()
		r.fill(l, rel)
		r.mu.Lock()
	}
}

// fill reads rel into l and announces its subdirectories.
func (r *readAhead) fill(l *listing, rel string) {
	l.children, l.err = r.read(rel)
	close(l.done)
	r.mu.Lock()
	if !r.under(rel) {
		for _, c := range l.children {
			if c.IsDir() && (r.ignored == nil || !r.ignored(c.rel)) {
				heap.Push(&r.next, c.rel)
			}
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
		r.pending[rel], r.claimed[rel] = l, true
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
// What is announced below rel stays in the heap until a worker pops and
// drops it: removing it now would cost a pass over the heap per skipped
// directory, which adds up to seconds on a directory of many that one
// walk skips (a monorepo's services/, for each service).
func (r *readAhead) skip(rel string) {
	prefix := rel + string(filepath.Separator)
	r.mu.Lock()
	r.skipped[rel] = true
	for p := range r.pending {
		if p == rel || strings.HasPrefix(p, prefix) {
			delete(r.pending, p)
		}
	}
	r.mu.Unlock()
	r.cond.Broadcast()
}

// under reports whether rel is a skipped directory or below one. The
// caller holds r.mu.
func (r *readAhead) under(rel string) bool {
	if len(r.skipped) == 0 {
		return false
	}
	for p := rel; ; {
		if r.skipped[p] {
			return true
		}
		parent := filepath.Dir(p)
		if parent == p || parent == "." {
			return false
		}
		p = parent
	}
}

// walkOrder is a min-heap of relative paths in the order a depth-first,
// lexical walk reaches them: compared component by component, which is
// byte order with the separator below every other byte ("a/b" before
// "a-b", a parent before its children).
type walkOrder []string

func (w walkOrder) Len() int           { return len(w) }
func (w walkOrder) Less(i, j int) bool { return walkBefore(w[i], w[j]) }
func (w walkOrder) Swap(i, j int)      { w[i], w[j] = w[j], w[i] }
func (w *walkOrder) Push(x any)        { *w = append(*w, x.(string)) }
func (w *walkOrder) Pop() any {
	old := *w
	x := old[len(old)-1]
	*w = old[:len(old)-1]
	return x
}

// walkBefore reports whether the walk reaches a before b.
func walkBefore(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == filepath.Separator {
			return true
		}
		if cb == filepath.Separator {
			return false
		}
		return ca < cb
	}
	return len(a) < len(b)
}
