package solver

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/containerd/platforms"
	"slices"
	"sync"

	"github.com/bkcache/bkcache/solver/engine"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/grpcerrors"
	"google.golang.org/grpc/codes"
)

// Node is one buildkitd of the pool a Builder spreads services over.
type Node struct {
	Addr    string // as shown and stored: without credentials (ShownAddr)
	dial    string // as given, to scrub it from errors
	debug   string // its debug address, where it serves cache-key debug information; "" when unknown
	client  *client.Client
	info    *client.Info
	workers []*client.WorkerInfo // as the node listed them when dialled
	// Engine is the Docker engine whose BuildKit this node is, or nil.
	Engine *DockerEngine
	// contexts share each local source directory among the solves.
	contexts *contextSessions

	mu   sync.Mutex
	down error // why the node is no longer used in this run
}

// Client is the node's connection; nil when it could not be reached.
func (n *Node) Client() *client.Client { return n.client }

// Down reports why the node is not used, or nil.
func (n *Node) Down() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.down
}

func (n *Node) markDown(err error) {
	n.mu.Lock()
	if n.down == nil {
		n.down = err
	}
	n.mu.Unlock()
}

// Pool is the buildkitd nodes of a run. A node that could not be reached
// keeps its place (so that other services keep their nodes) but is sent
// no service.
type Pool struct{ nodes []*Node }

// Dial connects to every target at once. With none answering, the
// error is the first target's; nodes that do not answer are left out,
// and Down says why.
func Dial(ctx context.Context, targets []engine.Target) (*Pool, error) {
	p := &Pool{nodes: make([]*Node, len(targets))}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			n := dialNode(ctx, t)
			if n.client != nil {
				n.workers, _ = n.client.ListWorkers(ctx)
				n.contexts = newContextSessions(n.client)
			}
			p.nodes[i] = n
		})
	}
	wg.Wait()
	if p.first() == nil {
		if len(p.nodes) == 0 {
			return nil, errors.New("no BuildKit to build on was given")
		}
		return nil, p.nodes[0].down
	}
	return p, nil
}

// dialNode connects to one target: a buildkitd by address, or the
// BuildKit of a Docker engine.
func dialNode(ctx context.Context, t engine.Target) *Node {
	if t.Docker != nil {
		c, info, eng, err := connectDocker(ctx, *t.Docker)
		return &Node{Addr: t.Docker.Host, dial: t.Docker.Host, client: c, info: info, Engine: eng, down: err}
	}
	c, info, err := Connect(ctx, t.Addr, t.TLS)
	return &Node{Addr: ShownAddr(t.Addr), dial: t.Addr, debug: t.Debug, client: c, info: info, down: err}
}

// Engine is the Docker engine the pool builds on, or nil when it builds
// on buildkitd nodes.
func (p *Pool) Engine() *DockerEngine {
	if n := p.first(); n != nil {
		return n.Engine
	}
	return nil
}

// Nodes returns the pool's nodes, reachable or not.
func (p *Pool) Nodes() []*Node {
	if p == nil {
		return nil
	}
	return p.nodes
}

// Down returns why each unreachable node is left out.
func (p *Pool) Down() []error {
	var out []error
	for _, n := range p.Nodes() {
		if err := n.Down(); err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Close closes every connection.
func (p *Pool) Close() {
	for _, n := range p.Nodes() {
		if n.client != nil {
			n.contexts.close()
			n.client.Close()
			n.Engine.Close()
		}
	}
}

func (p *Pool) first() *Node {
	for _, n := range p.Nodes() {
		if n.client != nil {
			return n
		}
	}
	return nil
}

// Buildkit describes the pool's first working node, for manifests.
func (p *Pool) Buildkit(ctx context.Context) *record.Buildkit {
	n := p.first()
	if n == nil {
		return nil
	}
	bk := &record.Buildkit{Address: n.Addr}
	if n.info != nil {
		bk.Version = n.info.BuildkitVersion.Version
	}
	if len(n.workers) > 0 {
		bk.Worker = n.workers[0].Labels["org.mobyproject.buildkit.worker.executor"]
		if ps := n.workers[0].Platforms; len(ps) > 0 {
			bk.Platform = platforms.Format(platforms.Normalize(ps[0]))
		}
	}
	return bk
}

// SolvesPerWorker is how many services a node is sent at once per worker
// it reports, unless Options.Parallel says otherwise. buildkitd schedules
// the steps of all its solves itself (sharing the steps they have in
// common, and bounding them with its own max-parallelism when set), as
// bake relies on when it sends every target at once; what the client
// bounds is the sessions and context transfers open at once. 16 sends a
// project of ten services all at once, and two hundred in waves.
const SolvesPerWorker = 16

// capacity is how many services n is sent at once by default.
func (n *Node) capacity() int {
	return SolvesPerWorker * max(len(n.workers), 1)
}

// order returns the nodes by their rendezvous (highest random weight)
// score for service: a service lands on the same node run after run, so
// that node's local cache stays warm for it, and adding or losing a node
// moves only the services that were on it.
func order(nodes []*Node, service string) []*Node {
	out := slices.Clone(nodes)
	slices.SortStableFunc(out, func(a, b *Node) int {
		sa, sb := score(a.Addr, service), score(b.Addr, service)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return out
}

func score(addr, service string) uint64 {
	h := sha256.Sum256([]byte(addr + "\x00" + service))
	return binary.BigEndian.Uint64(h[:8])
}

// NodeFailure reports whether a solve failed because its buildkitd could
// not be reached or went away, rather than because of the build.
func NodeFailure(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled) && grpcerrors.Code(err) == codes.Unavailable
}

// ErrNoNode reports a service for which no working buildkitd was left.
var ErrNoNode = errors.New("no working buildkitd left")

// solveOnNodes solves on the service's preferred node and, when that
// node fails (unreachable, died mid-solve), once more on the next working
// one, recording why. The node is then left out for the rest of the run.
func (b *Builder) solveOnNodes(ctx context.Context, service string, so *client.SolveOpt, sends []send, res *outcome.Result) attempt {
	var last attempt
	tries := 0
	for _, n := range order(b.pool.Nodes(), service) {
		if err := n.Down(); err != nil {
			if tries == 0 {
				res.Warn(fmt.Sprintf("buildkitd %s, this service's first choice, is left out of this run: %v", n.Addr, err))
			}
			continue
		}
		if tries == 2 {
			break
		}
		tries++
		select {
		case b.sems[n] <- struct{}{}:
		case <-ctx.Done():
			return attempt{err: ctx.Err(), counter: newStepCounter(service, nil)}
		}
		res.Node = n.Addr
		last = b.solveWithContext(ctx, n, service, so, sends, res)
		last.node = n
		last.err = scrubErr(last.err, n.dial)
		<-b.sems[n]
		if last.err == nil || ctx.Err() != nil || !NodeFailure(last.err) {
			return last
		}
		n.markDown(last.err)
		res.Warn(fmt.Sprintf("buildkitd %s failed during the solve, leaving it out of this run: %v", n.Addr, last.err))
	}
	if tries == 0 {
		var why []string
		for _, n := range b.pool.Nodes() {
			why = append(why, fmt.Sprintf("%s: %v", n.Addr, n.Down()))
		}
		return attempt{err: fmt.Errorf("%w (%s)", ErrNoNode, why), counter: newStepCounter(service, nil)}
	}
	return last
}

// solveWithContext solves so on n, its local sources sent as their
// groups are.
func (b *Builder) solveWithContext(ctx context.Context, n *Node, service string, so *client.SolveOpt, sends []send, res *outcome.Result) attempt {
	so, err := n.withContext(so, sends)
	if err != nil {
		return attempt{err: err, counter: newStepCounter(service, nil)}
	}
	return b.solve(ctx, n, service, so, res)
}
