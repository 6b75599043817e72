package registry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxRetryAfter bounds how long a registry's Retry-After is obeyed.
const maxRetryAfter = time.Minute

// newTransport returns the HTTP transport of bkcache's own registry
// requests (go-containerregistry adds authentication and retries of
// 5xx, 429 and resets on top): a registry that does not answer within
// timeout is an error rather than a hang, and a 429 or 503 carrying
// Retry-After is retried after the wait the registry asked for.
//
// Plain HTTP goes only to hosts allowHTTP accepts: go-containerregistry
// would otherwise fall back to HTTP for private (RFC 1918) addresses.
func newTransport(timeout time.Duration, allowHTTP func(host string) bool) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = timeout
	t.ResponseHeaderTimeout = timeout
	// Every service of a run asks the same registry at once: keep their
	// connections rather than the default two per host.
	t.MaxIdleConnsPerHost = 64
	inner := &headAsGet{inner: &retryAfter{inner: t, attempts: 3, sleep: sleepCtx}}
	return &httpsOnly{allow: allowHTTP, inner: &pings{inner: inner, plain: allowHTTP, seen: map[string]*ping{}}}
}

// pings answers a registry's ping (GET /v2/, which go-containerregistry
// sends before the first request to each repository, over HTTPS first
// even where plain HTTP is allowed) from the first answer the host gave
// this run: the scheme that works and the authentication challenge do
// not change within a run, and 200 services on one registry then cost
// one ping, not 200, each with a TLS attempt.
type pings struct {
	inner http.RoundTripper
	plain func(host string) bool // hosts that may be reached over HTTP
	mu    sync.Mutex
	seen  map[string]*ping // by scheme://host
}

// ping is one host's first answer: a response's status and headers (the
// body of a ping carries nothing), or the error of an HTTPS connection
// to a host that may be reached over plain HTTP, which then is.
type ping struct {
	done   chan struct{}
	status int
	header http.Header
	err    error
}

func (t *pings) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.Path != "/v2/" || req.Header.Get("Authorization") != "" {
		return t.inner.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + req.URL.Host
	t.mu.Lock()
	p, ok := t.seen[key]
	if !ok {
		p = &ping{done: make(chan struct{})}
		t.seen[key] = p
	}
	t.mu.Unlock()
	if !ok {
		resp, err := t.first(req, p)
		if p.header == nil && p.err == nil {
			// Not an answer to keep: the next ping is the host's first.
			t.mu.Lock()
			delete(t.seen, key)
			t.mu.Unlock()
		}
		close(p.done)
		return resp, err
	}
	select {
	case <-p.done:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	if p.header == nil && p.err == nil {
		return t.inner.RoundTrip(req) // the answer waited for was not one to keep
	}
	if p.err != nil {
		return nil, p.err
	}
	return &http.Response{
		Status: http.StatusText(p.status), StatusCode: p.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: p.header.Clone(), Body: http.NoBody, Request: req,
	}, nil
}

// first sends the host's first ping and keeps what later ones can be
// answered with: a 200 or 401 (the challenge), or the failure of HTTPS
// where plain HTTP is allowed (a TLS handshake with a plain-HTTP
// registry), after which go-containerregistry pings over HTTP. Anything
// else (a 5xx, a reset, a timeout) is not kept: the next ping is sent,
// and its answer is the one kept.
func (t *pings) first(req *http.Request, p *ping) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	switch {
	case err != nil:
		if req.URL.Scheme == "https" && t.plain(req.URL.Host) && req.Context().Err() == nil && !isTimeout(err) {
			p.err = err
		}
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized:
		p.status, p.header = resp.StatusCode, resp.Header.Clone()
	}
	return resp, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// httpsOnly refuses plain-HTTP requests to hosts not allowed them.
type httpsOnly struct {
	allow func(host string) bool
	inner http.RoundTripper
}

func (t *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !t.allow(req.URL.Host) {
		return nil, &PlainHTTPError{Host: req.URL.Host}
	}
	return t.inner.RoundTrip(req)
}

// PlainHTTPError reports a registry that would have been reached over
// plain HTTP, though neither loopback nor named insecure.
type PlainHTTPError struct{ Host string }

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("refusing plain HTTP to registry %s: only loopback registries and those named insecure are reached without TLS", e.Host)
}

// headAsGet asks again with GET where a registry (or a proxy before it)
// answers a manifest HEAD with 405 Method Not Allowed, as containerd's
// resolver does for BuildKit: the caller gets the GET's status and
// headers (digest, size, media type), without its body.
type headAsGet struct{ inner http.RoundTripper }

func (t *headAsGet) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err != nil || req.Method != http.MethodHead || resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(req.URL.Path, "/manifests/") {
		return resp, err
	}
	resp.Body.Close()
	get := req.Clone(req.Context())
	get.Method = http.MethodGet
	resp, err = t.inner.RoundTrip(get)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	resp.Body, resp.Request = http.NoBody, req
	return resp, nil
}

// retryAfter honours Retry-After on 429 and 503 answers, each caller
// waiting a little more than asked (up to a quarter), so that services
// throttled together do not all come back in the same instant.
type retryAfter struct {
	inner    http.RoundTripper
	attempts int
	sleep    func(*http.Request, time.Duration) error
}

func (t *retryAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	for i := 1; ; i++ {
		resp, err := t.inner.RoundTrip(req)
		if err != nil || i >= t.attempts || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
			return resp, err
		}
		wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok || wait > maxRetryAfter {
			return resp, nil
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return resp, nil
			}
			body, err := req.GetBody()
			if err != nil {
				return resp, nil
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		resp.Body.Close()
		if err := t.sleep(req, wait+rand.N(wait/4+1)); err != nil {
			return nil, err
		}
	}
}

func sleepCtx(req *http.Request, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-req.Context().Done():
		return req.Context().Err()
	}
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
