package solver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/cachekey"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/record"
)

// noKeyDebug is the cause of a miss where the daemon cannot say more.
const noKeyDebug = "BuildKit computed a different cache key for it; this daemon keeps no cache-key debug information to say which part " +
	"(a buildkitd started with --save-cache-debug and --debugaddr, given to bkcache with --debugaddr, does; " +
	"bkcache's own does once this version started it: `bkcache daemon stop`, and build again)"

// keyDebugTimeout bounds reading and comparing a daemon's keys: a step's
// explanation is not worth holding the run up for.
const keyDebugTimeout = 30 * time.Second

// keyDebug names, for the steps BuildKit ran where bkcache expected
// cache, the part of their cache key that differed, on a node that
// serves cache-key debug information: the configs of the caches the
// solve imports are read before it (it may export over them), the
// node's own keys after.
type keyDebug struct {
	done     chan struct{}
	configs  [][]byte
	warnings []string
}

// startKeyDebug starts reading the imports' configs when a node of the
// pool serves cache-key debug information; nil otherwise.
func (b *Builder) startKeyDebug(ctx context.Context, imports []plan.CacheEntry) *keyDebug {
	debugs := false
	for _, n := range b.pool.Nodes() {
		debugs = debugs || n.debug != ""
	}
	if !debugs || len(imports) == 0 {
		return nil
	}
	k := &keyDebug{done: make(chan struct{})}
	go func() {
		defer close(k.done)
		k.configs, k.warnings = b.pub.CacheConfigs(ctx, imports)
	}()
	return k
}

// explainer returns what a miss's cause asks of the keys: why step s's
// key differed, read once from n (the node that solved) when first
// asked. nil without key debug information.
func (k *keyDebug) explainer(ctx context.Context, j *plan.Job, n *Node, steps []record.Step) func(record.Step) string {
	if k == nil {
		return nil
	}
	var once sync.Once
	var whys map[int]string
	var otherwise string
	return func(s record.Step) string {
		once.Do(func() { whys, otherwise = k.explain(ctx, j, n, steps) })
		if w := whys[s.Line]; w != "" {
			return w
		}
		return otherwise
	}
}

// explain reads n's keys and the imported caches' and says, per step
// line, which part differed; otherwise is the cause of a step it could
// not place.
func (k *keyDebug) explain(ctx context.Context, j *plan.Job, n *Node, steps []record.Step) (whys map[int]string, otherwise string) {
	<-k.done
	if n == nil || n.debug == "" {
		return nil, noKeyDebug
	}
	ctx, cancel := context.WithTimeout(ctx, keyDebugTimeout)
	defer cancel()
	failed := func(err error) (map[int]string, string) {
		return nil, fmt.Sprintf("BuildKit computed a different cache key for it; its cache-key debug information could not be read: %v", err)
	}
	if len(k.configs) == 0 {
		return failed(fmt.Errorf("no imported cache's config: %v", k.warnings))
	}
	c, err := cachekey.NewClient(n.debug)
	if err != nil {
		return failed(err)
	}
	local, err := c.Store(ctx)
	if err != nil {
		return failed(err)
	}
	if !local.HasPlaintexts() {
		return nil, noKeyDebug
	}
	var imported []*cachekey.Graph
	for _, cfg := range k.configs {
		g, err := c.Load(ctx, cfg)
		if err != nil {
			return failed(err)
		}
		imported = append(imported, g)
	}
	var ss []cachekey.Step
	for _, s := range steps {
		if s.Status == record.StepRan {
			ss = append(ss, cachekey.Step{Line: s.Line, Instruction: s.Instruction})
		}
	}
	var sessions []string
	if n.contexts != nil {
		sessions = n.contexts.ids()
	}
	return cachekey.Explain(local, imported, sessions, ss, j.Redacted),
		"BuildKit computed a different cache key for it; its cache-key debug information holds no key of this step to compare"
}
