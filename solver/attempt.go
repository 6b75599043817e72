package solver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/record"
	remoteserrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/util/grpcerrors"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/grpc/codes"
)

// DefaultAttempts is how many times a solve that failed on a transient
// registry error is tried in all.
const DefaultAttempts = 3

// attempt is one solve's outcome.
type attempt struct {
	node    *Node // the node that solved, or last tried
	resp    *client.SolveResponse
	err     error
	counter *stepCounter
	// steps are the Dockerfile's steps as the solve ran them, from
	// buildkitd's history; stepsErr says why there are none.
	steps    []record.Step
	stepsErr error
}

// solve runs so on buildkitd, again after a backoff when it failed on a
// transient registry error (a push answered 5xx or 429 after BuildKit's
// own retries, a reset connection): the steps that succeeded are in
// buildkitd's cache and blobs already pushed are not sent again, so a
// retry costs little. Build errors and a daemon that went away are not
// retried.
func (b *Builder) solve(ctx context.Context, n *Node, service string, so *client.SolveOpt, res *outcome.Result) attempt {
	var a attempt
	for i := 1; ; i++ {
		a = b.solveOnce(ctx, n, service, so)
		if a.err == nil || ctx.Err() != nil || i >= b.opt.Attempts || !Transient(a.err) {
			return a
		}
		wait := backoff(i)
		res.Warn(fmt.Sprintf("attempt %d of %d failed on a transient registry error, retrying in %s: %v", i, b.opt.Attempts, wait.Round(100*time.Millisecond), a.err))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return a
		}
	}
}

func (b *Builder) solveOnce(ctx context.Context, n *Node, service string, so *client.SolveOpt) attempt {
	ch := make(chan *client.SolveStatus)
	counter := newStepCounter(service, b.progressFor(service))
	if b.pushed != nil {
		counter.pushed = func(ref string, d digest.Digest) { b.pushed(service, ref, d) }
	}
	var wg sync.WaitGroup
	wg.Go(func() { counter.run(ch) })
	one := *so
	one.Ref = identity.NewID() // the build's name in buildkitd's history
	resp, err := n.client.Solve(ctx, nil, one, ch)
	wg.Wait()
	a := attempt{resp: resp, err: err, counter: counter}
	if err == nil {
		a.steps, a.stepsErr = counter.dockerfileSteps(ctx, n.client, one.Ref)
	}
	return a
}

// backoff is the wait before attempt n+1: 1s, 2s, 4s... with jitter,
// at most 30s.
func backoff(n int) time.Duration {
	d := min(time.Second<<(n-1), 30*time.Second)
	return d + rand.N(d/4+1)
}

// transientRE matches how BuildKit and containerd report registry
// failures that may pass: 5xx and 429 answers (by status, or by the
// registry's error code when it sent one: containerd then reports the
// code, not the status), dropped connections, timeouts. Compiled on first
// use: it costs about a millisecond, at every start of every command.
var transientRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)unexpected status.*?: (429|5\d\d)\b|\b(toomanyrequests|unavailable|unknown): |too many requests|connection reset by peer|broken pipe|unexpected EOF|i/o timeout|TLS handshake timeout|server misbehaving`)
})

// Transient reports whether err, returned by a solve, is a registry
// failure worth another attempt. A step that failed (a RUN's exit code)
// never is, whatever its command line says.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if grpcerrors.Code(err) == codes.Unavailable {
		return false // buildkitd itself went away
	}
	// BuildKit sends containerd's typed registry error along with the
	// message, and the message alone may only carry the registry's own
	// error code ("toomanyrequests: ...").
	var status remoteserrors.ErrUnexpectedStatus
	if errors.As(err, &status) {
		return status.StatusCode == http.StatusTooManyRequests || status.StatusCode >= 500
	}
	msg := err.Error()
	if strings.Contains(msg, "did not complete successfully") {
		return false
	}
	return transientRE().MatchString(msg)
}

// progressFor is where service's status updates go.
func (b *Builder) progressFor(service string) chan<- *client.SolveStatus {
	if b.opt.ProgressOf != nil {
		return b.opt.ProgressOf(service)
	}
	return b.opt.Progress
}
