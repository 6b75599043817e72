package registry

import (
	"context"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

// lookaheadLimit bounds the HEADs Prefetch has in flight: enough to keep
// a registry's connections busy, few enough not to be throttled.
const lookaheadLimit = 32

// lookahead holds HEADs started before their answer is needed, each
// handed out once. It is shared by a Registry and its sessions.
type lookahead struct {
	sem   chan struct{}
	mu    sync.Mutex
	calls map[string]*headCall
	// session asks the prefetched questions: one ping, token and
	// credential lookup per repository, not per question. A failure that
	// sticks to it costs only the prefetches, which are asked again.
	session *Registry
}

type headCall struct {
	done  chan struct{}
	d     digest.Digest
	found bool
	err   error
}

func newLookahead() *lookahead {
	return &lookahead{sem: make(chan struct{}, lookaheadLimit), calls: map[string]*headCall{}}
}

// Prefetch starts asking whether ref exists, in the background, so that
// a later HeadPrefetched of ref has its answer at once: a run asks for
// each service's image as soon as its hash is known, while the others
// still hash. A ref already being asked about is not asked again.
func (r *Registry) Prefetch(ctx context.Context, ref name.Reference) {
	l, key := r.ahead, ref.Name()
	l.mu.Lock()
	if _, ok := l.calls[key]; ok {
		l.mu.Unlock()
		return
	}
	c := &headCall{done: make(chan struct{})}
	l.calls[key] = c
	if l.session == nil {
		l.session = r.Session(ctx)
	}
	session := l.session
	l.mu.Unlock()
	go func() {
		defer close(c.done)
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			c.err = ctx.Err()
			return
		}
		defer func() { <-l.sem }()
		c.d, c.found, c.err = session.Head(ctx, ref)
	}()
}

// HeadPrefetched is Head, answered by the Prefetch of ref when one was
// started; each prefetched answer is given once, so a later question
// goes to the registry. A prefetch that failed is asked again, so its
// errors are this call's own.
func (r *Registry) HeadPrefetched(ctx context.Context, ref name.Reference) (digest.Digest, bool, error) {
	l, key := r.ahead, ref.Name()
	l.mu.Lock()
	c, ok := l.calls[key]
	delete(l.calls, key)
	l.mu.Unlock()
	if ok {
		select {
		case <-c.done:
			if c.err == nil {
				return c.d, c.found, nil
			}
		case <-ctx.Done():
			return "", false, ctx.Err()
		}
	}
	return r.Head(ctx, ref)
}
