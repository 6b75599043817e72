package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
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

	// A failed prefetch's error is the answer, named as Head names it,
	// and is not asked again (a registry that does not answer would cost
	// its wait twice).
	rt.PushRandom(t, host+"/p/app:x")
	p.Inject(faultproxy.Fault{Method: "HEAD", Path: `/manifests/x$`, Times: 1, Status: 403})
	x := rt.Ref(t, p.Addr+"/p/app:x")
	r.Prefetch(ctx, x)
	if _, _, err := r.HeadPrefetched(ctx, x); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "docker login "+p.Addr) {
		t.Fatalf("after a refused prefetch: %v, want the refusal with its advice", err)
	}
	if heads := faultproxy.Match(p.Log(), "HEAD /v2/p/app/manifests/x"); len(heads) != 1 {
		t.Fatalf("want the one refused prefetch: %q", heads)
	}
	// A prefetch cancelled with its context is asked again by a caller
	// whose context is live.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	r.Prefetch(cancelled, x)
	if _, found, err := r.HeadPrefetched(ctx, x); !found || err != nil {
		t.Fatalf("after a cancelled prefetch: found=%v err=%v, want the registry's answer", found, err)
	}

	// A Head never takes a prefetched answer, and leaves it to the
	// HeadPrefetched that comes later.
	rt.PushRandom(t, host+"/p/app:y")
	y := rt.Ref(t, p.Addr+"/p/app:y")
	heads := func() int { return len(faultproxy.Match(p.Log(), "HEAD /v2/p/app/manifests/y")) }
	r.Prefetch(ctx, y)
	waitFor(t, p, "HEAD /v2/p/app/manifests/y", 1)
	if _, found, err := r.Head(ctx, y); !found || err != nil || heads() != 2 {
		t.Fatalf("Head: found=%v err=%v after %d HEADs, want its own second one", found, err, heads())
	}
	if _, found, err := r.HeadPrefetched(ctx, y); !found || err != nil || heads() != 2 {
		t.Fatalf("HeadPrefetched after Head: found=%v err=%v after %d HEADs, want the prefetched answer", found, err, heads())
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
