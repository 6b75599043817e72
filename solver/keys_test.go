package solver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/record"
)

// TestKeyDebugCauses: what a miss's cause says when the keys cannot be
// compared: no node serves them, no imported cache's config could be
// read, or nothing answers at the debug address (named, with how to
// start it). Without key debugging at all, there is no explainer.
func TestKeyDebugCauses(t *testing.T) {
	var none *keyDebug
	if none.explainer(context.Background(), &plan.Job{}, &Node{}, nil) != nil {
		t.Error("an explainer without key debugging")
	}
	ready := func(configs ...[]byte) *keyDebug {
		k := &keyDebug{done: make(chan struct{}), configs: configs, warnings: []string{"reading the cache config of r: 503"}}
		close(k.done)
		return k
	}
	nowhere := "unix://" + filepath.Join(t.TempDir(), "debug.sock")
	steps := []record.Step{{Line: 3, Instruction: "COPY a /a", Status: record.StepRan}}
	for _, tc := range []struct {
		name string
		k    *keyDebug
		node *Node
		want string
	}{
		{"the node serves no keys", ready([]byte("{}")), &Node{}, "keeps no cache-key debug information"},
		{"no node", ready([]byte("{}")), nil, "keeps no cache-key debug information"},
		{"no config read", ready(), &Node{debug: nowhere}, "could not be read: no imported cache's config: [reading the cache config of r: 503]"},
		{"nothing answers", ready([]byte("{}")), &Node{debug: nowhere}, "could not be read: buildkitd debug address " + nowhere},
		{"an address buildkitd would not take", ready([]byte("{}")), &Node{debug: "http://x"}, "could not be read: buildkitd debug address \"http://x\""},
	} {
		why := tc.k.explainer(context.Background(), &plan.Job{}, tc.node, steps)
		got := why(steps[0])
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want it to say %q", tc.name, got, tc.want)
		}
		if again := why(steps[0]); again != got {
			t.Errorf("%s: asked again, answered %q, then %q", tc.name, got, again)
		}
	}
}
