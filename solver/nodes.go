package solver

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/grpcerrors"
	"google.golang.org/grpc/codes"
)

// Node is one buildkitd of the pool a Builder spreads services over.
type Node struct {
	Addr   string
	client *client.Client
	sem    chan struct{} // solves at once on this node

	mu   sync.Mutex
	down error // why the node is no longer used in this run
}

// NewNode returns a node reached through c. A nil c is a node that could
// not be reached: down is why, and no service is sent to it (it still
// takes its place in the ordering, so other services keep their nodes).
func NewNode(addr string, c *client.Client, down error) *Node {
	return &Node{Addr: addr, client: c, down: down}
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

// Order returns addrs in the order service tries them: its preferred
// node first (rendezvous hashing; the order of addrs does not matter).
func Order(addrs []string, service string) []string {
	var ns []*Node
	for _, a := range addrs {
		ns = append(ns, &Node{Addr: a})
	}
	var out []string
	for _, n := range order(ns, service) {
		out = append(out, n.Addr)
	}
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
func (b *Builder) solveOnNodes(ctx context.Context, service string, so *client.SolveOpt, res *Result) attempt {
	var last attempt
	tries := 0
	for _, n := range order(b.nodes, service) {
		if err := n.Down(); err != nil {
			if tries == 0 {
				res.warn(fmt.Sprintf("buildkitd %s, this service's first choice, is left out of this run: %v", n.Addr, err))
			}
			continue
		}
		if tries == 2 {
			break
		}
		tries++
		select {
		case n.sem <- struct{}{}:
		case <-ctx.Done():
			return attempt{err: ctx.Err(), counter: newStepCounter(service, nil)}
		}
		res.Node = n.Addr
		last = b.solve(ctx, n, service, so, res)
		<-n.sem
		if last.err == nil || ctx.Err() != nil || !NodeFailure(last.err) {
			return last
		}
		n.markDown(last.err)
		res.warn(fmt.Sprintf("buildkitd %s failed during the solve, leaving it out of this run: %v", n.Addr, last.err))
	}
	if tries == 0 {
		var why []string
		for _, n := range b.nodes {
			why = append(why, fmt.Sprintf("%s: %v", n.Addr, n.Down()))
		}
		return attempt{err: fmt.Errorf("%w (%s)", ErrNoNode, why), counter: newStepCounter(service, nil)}
	}
	return last
}
