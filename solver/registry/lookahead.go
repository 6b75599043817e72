package registry

import (
	"context"
	"errors"
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
	// credential lookup per repository, not per question.
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
// goes to the registry. A prefetch's error is the answer too (it was
// retried as Head retries, and asking again would double the wait for a
// registry that does not answer), unless it was only cancelled.
func (r *Registry) HeadPrefetched(ctx context.Context, ref name.Reference) (digest.Digest, bool, error) {
	l, key := r.ahead, ref.Name()
	l.mu.Lock()
	c, ok := l.calls[key]
	delete(l.calls, key)
	l.mu.Unlock()
	if !ok {
		return r.Head(ctx, ref)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	if c.err != nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) && ctx.Err() == nil {
		return r.Head(ctx, ref)
	}
	return c.d, c.found, c.err
}
