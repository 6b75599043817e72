// Package faultproxy is a reverse proxy for a registry that injects
// faults: error statuses (with headers such as Retry-After), connection
// resets, delays and truncated bodies, chosen by method and path and
// limited by count. The e2e tests put it between bkcache (and buildkitd)
// and the real registry to prove what bkcache does when a registry
// misbehaves; everything not faulted reaches the registry unchanged.
package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fault is one kind of misbehaviour for the requests it matches.
type Fault struct {
	Method string // "" matches every method
	// Path is a regular expression matched against the request path,
	// for example `/manifests/cache-`.
	Path string
	// ContentType and Body, when set, are regular expressions the
	// request's Content-Type and body must match too: a registry that
	// refuses one form of manifest (an index, a config media type).
	ContentType, Body string
	// Times is how many matching requests are faulted; 0 means all.
	Times int

	Delay  time.Duration // wait this long first (then fault, or forward)
	Status int           // answer with this status instead of forwarding
	Header http.Header   // headers of that answer (Retry-After, ...)
	// Code is the distribution error code of that answer; "" picks the
	// usual one for Status (UNKNOWN, which clients take as temporary,
	// for statuses without one).
	Code string
	// Message is that error's message; "" says "injected fault STATUS".
	Message string
	Reset   bool // close the connection with a TCP reset, no answer
	// Truncate, when > 0, forwards the request but cuts the response
	// body after this many bytes and closes the connection.
	Truncate int
	// Before, when set, runs before the request is answered: a test
	// changes the registry (moves a tag, deletes a manifest) at exactly
	// that point of a client's sequence, with no sleeps.
	Before func()
}

// Rule is an injected fault and what it did.
type Rule struct {
	Fault
	re, ct, body *regexp.Regexp // Path, ContentType, Body; nil for ""
	mu           sync.Mutex
	hits         int
}

// Hits returns how many requests the rule faulted.
func (r *Rule) Hits() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

// take reports whether req, whose body is body, is faulted by r,
// counting it.
func (r *Rule) take(req *http.Request, body []byte) bool {
	if r.Method != "" && r.Method != req.Method {
		return false
	}
	if !r.re.MatchString(req.URL.Path) {
		return false
	}
	if (r.ct != nil && !r.ct.MatchString(req.Header.Get("Content-Type"))) || (r.body != nil && !r.body.Match(body)) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Times > 0 && r.hits >= r.Times {
		return false
	}
	r.hits++
	return true
}

// Proxy forwards to one registry, faulting what its rules match.
type Proxy struct {
	Addr string // host:port on loopback

	upstream *url.URL
	ln       net.Listener
	srv      *http.Server
	rp       *httputil.ReverseProxy

	mu    sync.Mutex
	rules []*Rule
	log   []string
}

// Start listens on a free loopback port and forwards to the registry at
// upstream (host:port, plain HTTP).
func Start(upstream string) (*Proxy, error) {
	u, err := url.Parse("http://" + upstream)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), upstream: u, ln: ln}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// The registry builds upload Locations from Host: keep
			// ours so that clients come back through the proxy.
			pr.Out.Host = pr.In.Host
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Inject adds a fault; rules are tried in the order they were added and
// the first that matches a request decides.
func (p *Proxy) Inject(f Fault) *Rule {
	r := &Rule{Fault: f, re: regexp.MustCompile(f.Path), ct: optionalRE(f.ContentType), body: optionalRE(f.Body)}
	p.mu.Lock()
	p.rules = append(p.rules, r)
	p.mu.Unlock()
	return r
}

func optionalRE(expr string) *regexp.Regexp {
	if expr == "" {
		return nil
	}
	return regexp.MustCompile(expr)
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.rules = nil
	p.mu.Unlock()
}

// Log returns one line per request seen: method, path and what happened.
func (p *Proxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }

func (p *Proxy) record(r *http.Request, what string) {
	p.mu.Lock()
	p.log = append(p.log, r.Method+" "+r.URL.Path+" "+what)
	p.mu.Unlock()
}

func (p *Proxy) match(r *http.Request) *Rule {
	p.mu.Lock()
	rules := p.rules
	p.mu.Unlock()
	var body []byte
	if slices.ContainsFunc(rules, func(rule *Rule) bool { return rule.body != nil }) && r.Body != nil {
		// Read to match, then handed on as it came.
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	for _, rule := range rules {
		if rule.take(r, body) {
			return rule
		}
	}
	return nil
}

// ServeHTTP forwards r or applies the first matching fault.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rule := p.match(r)
	if rule == nil {
		p.record(r, "forwarded")
		p.rp.ServeHTTP(w, r)
		return
	}
	if rule.Before != nil {
		rule.Before()
	}
	if rule.Delay > 0 {
		select {
		case <-time.After(rule.Delay):
		case <-r.Context().Done():
			p.record(r, "client gave up during delay")
			return
		}
	}
	switch {
	case rule.Reset:
		p.record(r, "reset")
		reset(w)
	case rule.Status != 0:
		p.record(r, fmt.Sprintf("status %d", rule.Status))
		for k, vs := range rule.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rule.Status)
		code := rule.Code
		if code == "" {
			code = errorCode(rule.Status)
		}
		msg := rule.Message
		if msg == "" {
			msg = fmt.Sprintf("injected fault %d", rule.Status)
		}
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
	case rule.Truncate > 0:
		p.record(r, fmt.Sprintf("truncated at %d bytes", rule.Truncate))
		p.truncate(w, r, rule.Truncate)
	default:
		p.record(r, "hooked or delayed, forwarded")
		p.rp.ServeHTTP(w, r)
	}
}

// errorCode is the distribution error code a registry sends with status.
func errorCode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "DENIED"
	case http.StatusNotFound:
		return "NAME_UNKNOWN"
	case http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	}
	return "UNKNOWN"
}

// reset closes the client's connection with RST instead of FIN.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// truncate forwards r, sends the upstream's headers (with the full
// Content-Length) and the first n bytes of its body, then drops the
// connection, as a proxy or registry dying mid-response would.
func (p *Proxy) truncate(w http.ResponseWriter, r *http.Request, n int) {
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	p.rp.ServeHTTP(rec, r)
	for k, vs := range rec.header {
		w.Header()[k] = vs
	}
	body := rec.body.Bytes()
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(rec.status)
	if n < len(body) {
		body = body[:n]
	}
	w.Write(body)
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler) // the server closes the connection, quietly
}

// recorder buffers a whole response from the reverse proxy.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// Match is a helper for tests reading the log: the lines whose text
// contains all of parts.
func Match(log []string, parts ...string) []string {
	var out []string
	for _, l := range log {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}
