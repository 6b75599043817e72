package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestAttachAndFetch(t *testing.T) {
	// A registry without the referrers API gets the referrers tag schema:
	// an index tagged sha256-<subject hex> listing the manifests.
	for _, referrers := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers=%v", referrers), func(t *testing.T) {
			testAttachAndFetch(t, rt.Serve(t, referrers).Host, referrers)
		})
	}
}

func testAttachAndFetch(t *testing.T, host string, referrers bool) {
	ctx := context.Background()
	r := New(Options{})
	img := host + "/p/app"
	dg := rt.PushRandom(t, img+":abc")
	const docType, otherType = "application/vnd.test.doc.v1+json", "application/vnd.test.other.v1+json"

	var none *NoArtifactError
	if _, err := r.FetchArtifact(ctx, rt.Ref(t, img+":abc"), docType); !errors.As(err, &none) || none.Digest.String() != dg {
		t.Fatalf("before attaching: %v", err)
	}
	if _, err := r.FetchArtifact(ctx, rt.Ref(t, img+":nope"), docType); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
	subject := rt.Ref(t, img+"@"+dg).(name.Digest)
	for i, doc := range []string{"older", "newer"} {
		if err := r.Attach(ctx, subject, docType, []byte(doc), time.Unix(int64(1000+i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Another type, attached last, is not what is asked for.
	if err := r.Attach(ctx, subject, otherType, []byte("other"), time.Unix(2000, 0)); err != nil {
		t.Fatal(err)
	}
	// A tag that moves to the image carries its artifacts with it.
	if err := r.Copy(ctx, rt.Ref(t, img+":abc"), rt.Tag(t, img+":ci")); err != nil {
		t.Fatal(err)
	}
	got, err := r.FetchArtifact(ctx, rt.Ref(t, img+":ci"), docType)
	if err != nil || string(got) != "newer" {
		t.Fatalf("want the newest artifact of its type, got %q, %v", got, err)
	}
	for typ, want := range map[string]bool{docType: true, otherType: true, "application/vnd.test.none": false} {
		if has, err := r.HasArtifact(ctx, subject, typ); err != nil || has != want {
			t.Errorf("HasArtifact(%s) = %v, %v; want %v", typ, has, err, want)
		}
	}
	// The fallback tag exists exactly when the registry lacks the API.
	fallback := img + ":" + strings.Replace(dg, ":", "-", 1)
	_, found, err := r.Head(ctx, rt.Ref(t, fallback))
	if err != nil || found == referrers {
		t.Fatalf("referrers tag %s: found=%v, err=%v; registry has the referrers API: %v", fallback, found, err, referrers)
	}
}

func TestHeadClassifiesErrors(t *testing.T) {
	host := rt.Serve(t, true).Host
	r := New(Options{})
	ctx := context.Background()
	if _, found, err := r.Head(ctx, rt.Ref(t, host+"/p/x:missing")); found || err != nil {
		t.Fatalf("404 must be a plain miss: found=%v err=%v", found, err)
	}
	dg := rt.PushRandom(t, host+"/p/x:t")
	if d, found, err := r.Head(ctx, rt.Ref(t, host+"/p/x:t")); !found || err != nil || d.String() != dg {
		t.Fatalf("hit: %s %v %v", d, found, err)
	}
	if _, _, err := r.Head(ctx, rt.Ref(t, "127.0.0.1:1/p/x:t")); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable registry must be an error naming it: %v", err)
	}
}

// TestHeadRefused: where HEAD is answered 405, a GET says hit or miss,
// and its 404 is still a plain miss.
func TestHeadRefused(t *testing.T) {
	p, host := rt.Faulty(t)
	dg := rt.PushRandom(t, host+"/p/app:h")
	p.Inject(faultproxy.Fault{Method: "HEAD", Path: `/manifests/`, Status: 405})
	r := New(Options{})
	if d, found, err := r.Head(context.Background(), rt.Ref(t, p.Addr+"/p/app:h")); !found || err != nil || d.String() != dg {
		t.Errorf("hit through a GET: %s %v %v", d, found, err)
	}
	if _, found, err := r.Head(context.Background(), rt.Ref(t, p.Addr+"/p/app:gone")); found || err != nil {
		t.Errorf("miss through a GET: found=%v err=%v", found, err)
	}
}

// TestSkipCheckUnderFaults: the skip check takes only a 404 for a miss,
// rides out transient failures, honours Retry-After, and reports
// everything else as an error naming the registry.
func TestSkipCheckUnderFaults(t *testing.T) {
	p, host := rt.Faulty(t)
	rt.PushRandom(t, host+"/p/app:h")
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
		// Some proxies and registries refuse HEAD: a GET answers instead.
		{"HEAD refused with 405", faultproxy.Fault{Method: "HEAD", Path: manifests, Status: 405}, true, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			rule := p.Inject(tc.fault)
			_, found, err := New(Options{}).Head(context.Background(), rt.Ref(t, ref))
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
	p, host := rt.Faulty(t)
	rt.PushRandom(t, host+"/p/app:h")
	p.Inject(faultproxy.Fault{Path: `/manifests/h$`, Delay: 5 * time.Second})
	_, found, err := New(Options{Timeout: 100 * time.Millisecond}).Head(context.Background(), rt.Ref(t, p.Addr+"/p/app:h"))
	if err == nil || found || !strings.Contains(err.Error(), p.Addr) {
		t.Fatalf("a registry that does not answer must be an error naming it: found=%v err=%v", found, err)
	}
}

// TestPingOnce: the services of a run, each in its repository, ping the
// registry once between them, however many ask at once; an answer that
// is not the registry's settled one (a 503) is not kept.
func TestPingOnce(t *testing.T) {
	s := rt.Serve(t, true)
	for i := range 20 {
		rt.PushRandom(t, fmt.Sprintf("%s/p/s%d:h", s.Host, i))
	}
	r := New(Options{})
	before := s.Pings()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, found, err := r.Head(context.Background(), rt.Ref(t, fmt.Sprintf("%s/p/s%d:h", s.Host, i))); err != nil || !found {
				t.Errorf("s%d: found=%v, %v", i, found, err)
			}
		})
	}
	wg.Wait()
	if n := s.Pings() - before; n != 1 {
		t.Errorf("20 services in 20 repositories pinged the registry %d times, want 1", n)
	}

	p, host := rt.Faulty(t)
	rt.PushRandom(t, host+"/p/app:h")
	rule := p.Inject(faultproxy.Fault{Method: http.MethodGet, Path: `^/v2/$`, Times: 1, Status: http.StatusServiceUnavailable})
	r = New(Options{})
	for i := range 4 {
		if _, found, err := r.Head(context.Background(), rt.Ref(t, p.Addr+"/p/app:h")); err != nil || !found {
			t.Errorf("head %d after a 503 ping: found=%v, %v", i, found, err)
		}
	}
	if rule.Hits() != 1 {
		t.Errorf("the 503 was served %d times, want 1", rule.Hits())
	}
	if pinged := len(faultproxy.Match(p.Log(), "GET", "/v2/ ")); pinged < 2 {
		t.Errorf("after a 503 ping the next was answered from it: %d pings reached the registry\n%s", pinged, strings.Join(p.Log(), "\n"))
	} else if pinged > 2 {
		t.Errorf("after a 503 ping, the next answer was not kept: %d pings reached the registry for 4 heads, want 2\n%s", pinged, strings.Join(p.Log(), "\n"))
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

// TestPlainHTTPOnlyWhereAllowed: bkcache talks plain HTTP to loopback
// registries and to those named by --insecure-registry, never to others
// (go-containerregistry alone would for private addresses).
func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	r := New(Options{Hosts: NewHosts("reg.internal:5000")})
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
		if got := r.Hosts().PlainHTTP(tc.host); got != tc.ok {
			t.Errorf("PlainHTTP(%s) = %v, want %v", tc.host, got, tc.ok)
		}
	}
	// A private address named nowhere: HTTPS is tried (and fails, nobody
	// listens), the HTTP fallback is refused before any connection.
	r = New(Options{Timeout: 500 * time.Millisecond})
	_, _, err := r.Head(context.Background(), rt.Ref(t, "10.255.255.1:5000/a:t"))
	if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP to registry 10.255.255.1:5000") {
		t.Errorf("plain HTTP to a private address: %v", err)
	}
}

// TestRegistryTimeoutDefault: without a timeout, the default bounds each wait
// for a registry's answer.
func TestRegistryTimeoutDefault(t *testing.T) {
	for _, tc := range []struct {
		given, want time.Duration
	}{{0, DefaultTimeout}, {-time.Second, DefaultTimeout}, {time.Second, time.Second}} {
		r := New(Options{Timeout: tc.given})
		tr := r.transport.(*httpsOnly).inner.(*pings).inner.(*headAsGet).inner.(*retryAfter).inner.(*http.Transport)
		if tr.ResponseHeaderTimeout != tc.want || tr.TLSHandshakeTimeout != tc.want {
			t.Errorf("timeout %v: waits %v for headers, %v for TLS; want %v", tc.given, tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout, tc.want)
		}
	}
}

func TestParseMirrors(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want Mirrors
		err  bool
	}{
		{[]string{"docker.io=127.0.0.1:5000"}, Mirrors{"docker.io": "127.0.0.1:5000"}, false},
		{[]string{"docker.io=https://mirror.local", "ghcr.io=m2:5000"}, Mirrors{"docker.io": "mirror.local", "ghcr.io": "m2:5000"}, false},
		{[]string{"docker.io"}, nil, true},
		{[]string{"=m"}, nil, true},
		{[]string{"docker.io="}, nil, true},
		{[]string{"docker.io=m/path"}, nil, true},
	} {
		got, err := ParseMirrors(tc.in)
		if (err != nil) != tc.err || (!tc.err && fmt.Sprint(got) != fmt.Sprint(tc.want)) {
			t.Errorf("ParseMirrors(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// TestResolveThroughMirror: a Docker Hub image is looked up on its
// mirror; a registry without one, directly.
func TestResolveThroughMirror(t *testing.T) {
	mirror := rt.Serve(t, true)
	d := rt.PushRandom(t, mirror.Host+"/library/alpine:3.20")
	r := New(Options{})
	got, err := r.Resolve(context.Background(), rt.Ref(t, "alpine:3.20"), Mirrors{"docker.io": mirror.Host})
	if err != nil || got.String() != d {
		t.Fatalf("through the mirror: %s, %v; want %s", got, err, d)
	}
	own := rt.PushRandom(t, mirror.Host+"/own:1")
	if got, err := r.Resolve(context.Background(), rt.Ref(t, mirror.Host+"/own:1"), Mirrors{"docker.io": "127.0.0.1:1"}); err != nil || got.String() != own {
		t.Errorf("no mirror for its registry: %s, %v", got, err)
	}
	if _, err := r.Resolve(context.Background(), rt.Ref(t, mirror.Host+"/own:nope"), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag: %v", err)
	}
}

// TestRetryAfterSpreads: callers throttled together each wait at least
// what Retry-After asks and at most a quarter more, not all the same:
// a 429 storm over parallel services does not come back in lockstep.
func TestRetryAfterSpreads(t *testing.T) {
	p, host := rt.Faulty(t)
	rt.PushRandom(t, host+"/p/app:h")
	const callers = 16
	p.Inject(faultproxy.Fault{Path: `/manifests/h$`, Times: callers, Status: 429, Header: http.Header{"Retry-After": {"2"}}})
	var mu sync.Mutex
	var waits []time.Duration
	// Every caller's first request takes one of the faults before any
	// comes back: a retry that overtook another caller's first request
	// would take its fault, and that caller would meet two.
	var arrived sync.WaitGroup
	arrived.Add(callers)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	tr := &retryAfter{inner: http.DefaultTransport, attempts: 3, sleep: func(_ *http.Request, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		arrived.Done()
		select {
		case <-all:
		case <-time.After(time.Minute): // a caller that never came; the count below says so
		}
		return nil
	}}
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://"+p.Addr+"/v2/p/app/manifests/h", nil)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("after the wait: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	distinct := map[time.Duration]bool{}
	for _, w := range waits {
		if w < 2*time.Second || w > 2500*time.Millisecond {
			t.Errorf("waited %s for Retry-After: 2", w)
		}
		distinct[w] = true
	}
	if len(waits) != callers || len(distinct) < callers/2 {
		t.Errorf("%d waits, %d distinct: the callers come back together", len(waits), len(distinct))
	}
}

// TestCopyAcrossRepositories: a copy into another repository brings the
// image's blobs there (a registry refuses a manifest whose blobs the
// repository lacks); one within a repository writes the manifest only.
func TestCopyAcrossRepositories(t *testing.T) {
	p, host := rt.Faulty(t)
	rt.PushRandom(t, host+"/p/app:abc")
	r := New(Options{})
	ctx := context.Background()
	blobsIn := func(repo string) int {
		n := 0
		for _, l := range p.Log() {
			if strings.Contains(l, "/v2/"+repo+"/blobs/") {
				n++
			}
		}
		return n
	}
	if err := r.Copy(ctx, rt.Ref(t, p.Addr+"/p/app:abc"), rt.Tag(t, p.Addr+"/p/app:ci")); err != nil {
		t.Fatal(err)
	}
	if n := blobsIn("p/app"); n != 0 {
		t.Errorf("a copy within the repository asked for %d blobs: %q", n, p.Log())
	}
	if err := r.Copy(ctx, rt.Ref(t, p.Addr+"/p/app:abc"), rt.Tag(t, p.Addr+"/q/other:ci")); err != nil {
		t.Fatal(err)
	}
	if blobsIn("q/other") == 0 {
		t.Errorf("a copy into another repository brought no blob there: %q", p.Log())
	}
}

// TestImmutable: only a 400 naming an invalid tag, or saying the
// repository is immutable, is a refusal to move a tag.
func TestImmutable(t *testing.T) {
	te := func(status int, code transport.ErrorCode, msg string) *transport.Error {
		return &transport.Error{StatusCode: status, Errors: []transport.Diagnostic{{Code: code, Message: msg}}}
	}
	for _, tc := range []struct {
		err  *transport.Error
		want bool
	}{
		{nil, false},
		{te(400, transport.TagInvalidErrorCode, "cannot be overwritten"), true},
		{te(400, transport.ManifestInvalidErrorCode, "The repository is IMMUTABLE"), true},
		{te(400, transport.ManifestInvalidErrorCode, "bad manifest"), false},
		{te(500, transport.TagInvalidErrorCode, "immutable"), false},
		{te(403, transport.DeniedErrorCode, "immutable"), false},
	} {
		if got := immutable(tc.err); got != tc.want {
			t.Errorf("immutable(%+v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
