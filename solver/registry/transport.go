package registry

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
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
	return &httpsOnly{allow: allowHTTP, inner: &retryAfter{inner: t, attempts: 3, sleep: sleepCtx}}
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

// retryAfter honours Retry-After on 429 and 503 answers.
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
		if err := t.sleep(req, wait); err != nil {
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
