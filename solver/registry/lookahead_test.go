package registry

import (
	"context"
	"testing"
	"time"

	"github.com/bkcache/bkcache/e2e/faultproxy"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
)

// TestPrefetch: a prefetched answer is the registry's at the time it was
// asked, is asked once however often it is prefetched, and is given once;
// the next question, and one whose prefetch failed, go to the registry.
func TestPrefetch(t *testing.T) {
	p, host := rt.Faulty(t)
	ctx := context.Background()
	r := New(Options{})
	ref := rt.Ref(t, p.Addr+"/p/app:h")
	r.Prefetch(ctx, ref)
	r.Prefetch(ctx, ref)
	if _, found, err := r.HeadPrefetched(ctx, ref); found || err != nil {
		t.Fatalf("prefetched before any push: found=%v err=%v", found, err)
	}
	if heads := faultproxy.Match(p.Log(), "HEAD /v2/p/app/manifests/h"); len(heads) != 1 {
		t.Errorf("two prefetches of one ref sent %d HEADs, want 1: %q", len(heads), heads)
	}

	dg := rt.PushRandom(t, host+"/p/app:h")
	r.Prefetch(ctx, ref)
	waitFor(t, p, "HEAD /v2/p/app/manifests/h", 2)
	rt.PushRandom(t, host+"/p/app:h") // moves h after the prefetch answered
	if d, found, err := r.HeadPrefetched(ctx, ref); !found || err != nil || d.String() != dg {
		t.Fatalf("prefetched: %s %v %v, want the digest %s it had when asked", d, found, err, dg)
	}
	if d, _, _ := r.HeadPrefetched(ctx, ref); d.String() == dg {
		t.Fatal("a prefetched answer was given twice: the second question must reach the registry")
	}

	// A failed prefetch is asked again, so the error (or answer) is the
	// caller's own.
	rt.PushRandom(t, host+"/p/app:x")
	p.Inject(faultproxy.Fault{Method: "HEAD", Path: `/manifests/x$`, Times: 1, Status: 401})
	x := rt.Ref(t, p.Addr+"/p/app:x")
	r.Prefetch(ctx, x)
	if _, found, err := r.HeadPrefetched(ctx, x); !found || err != nil {
		t.Fatalf("after a failed prefetch: found=%v err=%v, want the registry's answer", found, err)
	}
	if heads := faultproxy.Match(p.Log(), "HEAD /v2/p/app/manifests/x"); len(heads) != 2 {
		t.Fatalf("want the failed prefetch and the question asked again: %q", heads)
	}

	// A Head never takes a prefetched answer.
	r.Prefetch(ctx, x)
	waitFor(t, p, "HEAD /v2/p/app/manifests/x", 3)
	before := len(faultproxy.Match(p.Log(), "HEAD /v2/p/app/manifests/x"))
	if _, found, err := r.Head(ctx, x); !found || err != nil {
		t.Fatalf("Head: found=%v err=%v", found, err)
	}
	if after := len(faultproxy.Match(p.Log(), "HEAD /v2/p/app/manifests/x")); after != before+1 {
		t.Errorf("Head sent %d requests, want its own one", after-before)
	}
}

// waitFor waits until the proxy has seen n requests matching what.
func waitFor(t *testing.T, p *faultproxy.Proxy, what string, n int) {
	t.Helper()
	for range 500 {
		if len(faultproxy.Match(p.Log(), what)) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the proxy never saw %d of %q: %q", n, what, p.Log())
}
