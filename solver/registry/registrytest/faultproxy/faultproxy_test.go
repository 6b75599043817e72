package faultproxy

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// upstream is go-containerregistry's in-process registry.
func upstream(t *testing.T) *Proxy {
	t.Helper()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	p, err := Start(strings.TrimPrefix(reg.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func get(t *testing.T, p *Proxy, method, path string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.Addr+path, nil)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaults(t *testing.T) {
	p := upstream(t)

	// Forwarded: the registry's own answer.
	resp, _, err := get(t, p, "GET", "/v2/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("forwarded /v2/: %v %v", resp, err)
	}

	// A status with headers, twice, then the registry again.
	r := p.Inject(Fault{Method: "GET", Path: `^/v2/$`, Times: 2, Status: 429, Header: http.Header{"Retry-After": {"1"}}})
	for i := range 3 {
		resp, _, err := get(t, p, "GET", "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		want := 429
		if i == 2 {
			want = 200
		}
		if resp.StatusCode != want || (want == 429 && resp.Header.Get("Retry-After") != "1") {
			t.Fatalf("request %d: status %d, Retry-After %q", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if r.Hits() != 2 {
		t.Errorf("hits %d, want 2", r.Hits())
	}
	// The method filters.
	p.Clear()
	p.Inject(Fault{Method: "PUT", Path: `.`, Status: 500})
	if resp, _, _ := get(t, p, "GET", "/v2/"); resp.StatusCode != 200 {
		t.Errorf("a PUT rule faulted a GET: %d", resp.StatusCode)
	}

	// Reset: the client sees a reset connection, no response.
	p.Clear()
	p.Inject(Fault{Path: `^/v2/$`, Reset: true})
	if _, _, err := get(t, p, "GET", "/v2/"); err == nil || !(errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF")) {
		t.Errorf("reset: %v", err)
	}

	// Truncate: headers promise more than the body delivers.
	p.Clear()
	p.Inject(Fault{Path: `^/v2/_catalog$`, Truncate: 1})
	if _, b, err := get(t, p, "GET", "/v2/_catalog"); err == nil {
		t.Errorf("truncated body read without error: %q", b)
	}

	// Delay, then forward.
	p.Clear()
	p.Inject(Fault{Path: `^/v2/$`, Delay: 50 * time.Millisecond})
	if resp, _, err := get(t, p, "GET", "/v2/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("delayed: %v %v", resp, err)
	}
	if got := Match(p.Log(), "GET /v2/", "delayed"); len(got) != 1 {
		t.Errorf("log: %q", p.Log())
	}
}

// TestContentTypeAndBody: a rule with a Content-Type or body pattern
// faults only the requests that match it, and a request it reads the
// body of to decide reaches the registry whole.
func TestContentTypeAndBody(t *testing.T) {
	p := upstream(t)
	r := p.Inject(Fault{Method: "PUT", Path: `/manifests/`, ContentType: `image\.index`, Body: `cacheconfig`, Status: 400, Code: "MANIFEST_INVALID"})
	put := func(tag, ct, body string) int {
		t.Helper()
		req, _ := http.NewRequest("PUT", "http://"+p.Addr+"/v2/x/manifests/"+tag, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const index, manifest = "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"
	cacheIndex := `{"schemaVersion":2,"mediaType":"` + index + `","manifests":[],"annotations":{"x":"cacheconfig"}}`
	plainIndex := `{"schemaVersion":2,"mediaType":"` + index + `","manifests":[]}`
	if got := put("a", index, cacheIndex); got != 400 || r.Hits() != 1 {
		t.Fatalf("a matching PUT: %d, hits %d", got, r.Hits())
	}
	if got := put("b", index, plainIndex); got != 201 {
		t.Errorf("another body: %d, want the registry's 201", got)
	}
	put("c", manifest, cacheIndex) // another Content-Type: not the rule's (hits checked below)
	resp, b, err := get(t, p, "GET", "/v2/x/manifests/b")
	if err != nil || resp.StatusCode != 200 || string(b) != plainIndex {
		t.Errorf("the forwarded body: %v %q %v", resp, b, err)
	}
	if r.Hits() != 1 {
		t.Errorf("hits %d, want 1", r.Hits())
	}
}
