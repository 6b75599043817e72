package solver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/e2e/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/grpcerrors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// faultyRegistry is go-containerregistry's in-process registry behind a
// fault-injecting proxy; it returns the proxy and the registry's host.
func faultyRegistry(t *testing.T) (*faultproxy.Proxy, string) {
	t.Helper()
	host := testRegistry(t)
	p, err := faultproxy.Start(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, host
}

// TestSkipCheckUnderFaults: the skip check takes only a 404 for a miss,
// rides out transient failures, honours Retry-After, and reports
// everything else as an error naming the registry.
func TestSkipCheckUnderFaults(t *testing.T) {
	p, host := faultyRegistry(t)
	pushRandom(t, host+"/p/app:h")
	ref := p.Addr + "/p/app:h"
	manifests := `^/v2/p/app/manifests/h$`
	for _, tc := range []struct {
		name  string
		fault faultproxy.Fault
		found bool
		err   []string // substrings of the error; nil: no error
		hits  int
	}{
		{"no fault", faultproxy.Fault{Path: "^$"}, true, nil, 0},
		{"429 with Retry-After, twice", faultproxy.Fault{Path: manifests, Times: 2, Status: 429, Header: http.Header{"Retry-After": {"1"}}}, true, nil, 2},
		{"503 once", faultproxy.Fault{Path: manifests, Times: 1, Status: 503}, true, nil, 1},
		{"reset once", faultproxy.Fault{Path: manifests, Times: 1, Reset: true}, true, nil, 1},
		{"401", faultproxy.Fault{Path: manifests, Status: 401}, false, []string{p.Addr, "docker login " + p.Addr, "401"}, -1},
		{"403", faultproxy.Fault{Path: manifests, Status: 403}, false, []string{p.Addr, "docker login", "403"}, -1},
		{"500 always", faultproxy.Fault{Path: manifests, Status: 500}, false, []string{p.Addr, "500"}, -1},
		{"404 is a miss", faultproxy.Fault{Path: manifests, Status: 404}, false, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			rule := p.Inject(tc.fault)
			_, found, err := NewRegistry(RegistryOptions{}).Head(context.Background(), ref)
			if found != tc.found {
				t.Errorf("found = %v, want %v (err %v)", found, tc.found, err)
			}
			switch {
			case tc.err == nil && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.err != nil && err == nil:
				t.Errorf("no error; a failure must never pass as a miss or a hit")
			}
			for _, w := range tc.err {
				if err != nil && !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.hits >= 0 && rule.Hits() != tc.hits {
				t.Errorf("fault hit %d times, want %d", rule.Hits(), tc.hits)
			}
			if tc.hits < 0 && tc.err != nil && strings.Contains(tc.name, "500") && rule.Hits() < 2 {
				t.Errorf("a 500 was not retried (%d requests)", rule.Hits())
			}
		})
	}
}

func TestRegistryTimeout(t *testing.T) {
	p, host := faultyRegistry(t)
	pushRandom(t, host+"/p/app:h")
	p.Inject(faultproxy.Fault{Path: `/manifests/h$`, Delay: 5 * time.Second})
	_, found, err := NewRegistry(RegistryOptions{Timeout: 100 * time.Millisecond}).Head(context.Background(), p.Addr+"/p/app:h")
	if err == nil || found || !strings.Contains(err.Error(), p.Addr) {
		t.Fatalf("a registry that does not answer must be an error naming it: found=%v err=%v", found, err)
	}
}

// TestCheckImports: caches that do not exist yet are dropped quietly,
// caches the registry cannot serve are dropped with a warning naming
// them, others are kept.
func TestCheckImports(t *testing.T) {
	p, host := faultyRegistry(t)
	pushRandom(t, host+"/p/app:cache-h")
	pushRandom(t, host+"/p/app:cache-broken")
	p.Inject(faultproxy.Fault{Path: `/manifests/cache-broken$`, Status: 502})
	entry := func(ref string) client.CacheOptionsEntry {
		return client.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": p.Addr + "/p/app:" + ref}}
	}
	local := client.CacheOptionsEntry{Type: "local", Attrs: map[string]string{"src": "/tmp/c"}}
	b := &Builder{registry: NewRegistry(RegistryOptions{})}
	kept, warnings := b.checkImports(context.Background(), []client.CacheOptionsEntry{entry("cache-h"), entry("cache-ci"), entry("cache-broken"), local})
	if got := cacheRefs(kept); fmt.Sprint(got) != fmt.Sprint([]string{"registry:" + p.Addr + "/p/app:cache-h", "local"}) {
		t.Errorf("kept %v", got)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "cache-broken") || !strings.Contains(warnings[0], "502") {
		t.Errorf("warnings %q", warnings)
	}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New(`failed to push 127.0.0.1:5000/p/app:h: unexpected status from PUT request to http://127.0.0.1:5000/v2/p/app/manifests/h: 429 Too Many Requests`), true},
		{errors.New(`unexpected status from HEAD request to http://r/v2/x/blobs/sha256:1: 503 Service Unavailable`), true},
		{errors.New(`failed to copy: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer`), true},
		{errors.New(`failed commit on ref "layer-sha256:1": unexpected EOF`), true},
		{errors.New(`dial tcp 10.0.0.1:443: i/o timeout`), true},
		{errors.New(`failed to push r/x:h: toomanyrequests: You have reached your pull rate limit`), true},
		{errors.New(`failed to push r/x:h: unknown: unknown error`), true},
		{errors.New(`failed to push r/x:h: unavailable: service unavailable`), true},
		{errors.New(`failed to push r/x:h: denied: requested access to the resource is denied`), false},
		{errors.New(`failed to push r/x:h: manifest invalid: manifest invalid`), false},
		{errors.New(`unexpected status from PUT request to http://r/v2/x/manifests/h: 400 Bad Request`), false},
		{errors.New(`unexpected status from PUT request to http://r/v2/x/manifests/h: 401 Unauthorized`), false},
		{errors.New(`process "/bin/sh -c curl https://x || echo connection reset by peer" did not complete successfully: exit code: 1`), false},
		{fmt.Errorf("solve: %w", context.Canceled), false},
		{grpcerrors.WrapCode(status.Error(codes.Unavailable, "error reading from server: connection reset by peer"), codes.Unavailable), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Sun, 22 Nov 2026 12:00:10 GMT", 10 * time.Second, true},
		{"Sun, 22 Nov 2026 11:00:00 GMT", 0, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n <= 10; n++ {
		base := min(time.Second<<(n-1), 30*time.Second)
		if d := backoff(n); d < base || d > base+base/4 {
			t.Errorf("backoff(%d) = %v, want in [%v, %v]", n, d, base, base+base/4)
		}
	}
}

// TestPlainHTTPOnlyWhereAllowed: bkcache talks plain HTTP to loopback
// registries and to those named by --insecure-registry, never to others
// (go-containerregistry alone would for private addresses).
func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	r := NewRegistry(RegistryOptions{Insecure: []string{"reg.internal:5000"}})
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:5000", true},
		{"localhost:5000", true},
		{"[::1]:5000", true},
		{"reg.internal:5000", true},
		{"reg.internal", false},
		{"reg.internal:5001", false},
		{"10.0.0.1:5000", false},
		{"192.168.1.2", false},
		{"registry.example.com", false},
	} {
		if got := r.IsInsecure(tc.host); got != tc.ok {
			t.Errorf("IsInsecure(%s) = %v, want %v", tc.host, got, tc.ok)
		}
	}
	// A private address named nowhere: HTTPS is tried (and fails, nobody
	// listens), the HTTP fallback is refused before any connection.
	r = NewRegistry(RegistryOptions{Timeout: 500 * time.Millisecond})
	_, _, err := r.Head(context.Background(), "10.255.255.1:5000/a:t")
	if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP to registry 10.255.255.1:5000") {
		t.Errorf("plain HTTP to a private address: %v", err)
	}
}

// FuzzRefs: for any repository and tag bkcache accepts, the refs it
// writes parse, StripTag gives the repository back, and the registry
// host it derives (for credentials and plain-HTTP decisions) is the
// one go-containerregistry will talk to.
func FuzzRefs(f *testing.F) {
	for _, s := range [][2]string{
		{"reg.local/demo/app", "ci"}, {"localhost:5000/a", "ci-main"}, {"127.0.0.1:5000/x/y/z", "1.2"},
		{"app", "latest"}, {"library/app", "_x"}, {"[::1]:5000/a", "t"}, {"Reg/App", "ci"}, {"a:b:c", "d"},
		{"reg.local:/a", "x"}, {"r.io/a@sha256:00", "ci"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, repo, tag string) {
		r := NewRegistry(RegistryOptions{})
		r.IsInsecure(registryHost(repo)) // never panics
		if CheckRefs(repo, tag) != nil {
			return
		}
		refs := NewRefs(repo, tag, "ci")
		for _, ref := range []string{refs.Image, refs.Floating, refs.CacheFloat} {
			n, err := name.ParseReference(ref)
			if err != nil {
				t.Fatalf("accepted %q, %q but %q does not parse: %v", repo, tag, ref, err)
			}
			want := n.Context().RegistryStr()
			if want == name.DefaultRegistry {
				want = "docker.io"
			}
			if got := registryHost(ref); got != want {
				t.Fatalf("registryHost(%q) = %q, go-containerregistry talks to %q", ref, got, want)
			}
		}
		if got := compose.StripTag(refs.Image); got != repo {
			t.Fatalf("StripTag(%q) = %q, want %q", refs.Image, got, repo)
		}
		if got := compose.StripTag(repo + "@sha256:" + strings.Repeat("0", 64)); got != repo {
			t.Fatalf("StripTag of a digest ref = %q, want %q", got, repo)
		}
	})
}

func TestCheckRefs(t *testing.T) {
	for _, tc := range []struct {
		repo, tag string
		ok        bool
	}{
		{"reg.local/demo/app", "ci", true},
		{"localhost:5000/a", "cache-" + strings.Repeat("a", 64), true},
		{"app", "v1.2_x-y", true},
		{"0", "/0", false}, // found by FuzzRefs: would parse as repository path
		{"reg/app", ".hidden", false},
		{"reg/app", "-x", false},
		{"reg/app", strings.Repeat("t", 129), false},
		{"reg/App", "ci", false},
		{"reg/app ", "ci", false},
	} {
		if err := CheckRefs(tc.repo, tc.tag); (err == nil) != tc.ok {
			t.Errorf("CheckRefs(%q, %q) = %v, want ok=%v", tc.repo, tc.tag, err, tc.ok)
		}
	}
}
