package cachekey

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// maxGraph bounds what is read of one graph: a daemon's whole store,
// with plaintexts, of a busy machine.
const maxGraph = 512 << 20

// Client reads cache-key graphs from a buildkitd's debug address (its
// --debugaddr): unix:///path, tcp://host:port or host:port.
type Client struct {
	addr string
	http *http.Client
	base string
}

// NewClient returns a client of the debug address addr.
func NewClient(addr string) (*Client, error) {
	c := &Client{addr: addr, http: &http.Client{Timeout: 2 * time.Minute}}
	switch {
	case strings.HasPrefix(addr, "unix://"):
		path := strings.TrimPrefix(addr, "unix://")
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		c.base = "http://buildkitd"
	case strings.HasPrefix(addr, "tcp://"):
		c.base = "http://" + strings.TrimPrefix(addr, "tcp://")
	case strings.Contains(addr, "://"):
		return nil, fmt.Errorf("buildkitd debug address %q: want unix:///PATH, tcp://HOST:PORT or HOST:PORT (as buildkitd's --debugaddr)", addr)
	default:
		c.base = "http://" + addr
	}
	return c, nil
}

// Store is the daemon's own cache store, every key with its plaintexts.
func (c *Client) Store(ctx context.Context) (*Graph, error) {
	return c.graph(ctx, http.MethodGet, "/debug/cache/store", nil)
}

// Load is the graph of a registry cache's config (the blob of media
// type application/vnd.buildkit.cacheconfig.v0), with the plaintexts
// the daemon's debug database holds of its keys.
func (c *Client) Load(ctx context.Context, config []byte) (*Graph, error) {
	return c.graph(ctx, http.MethodPost, "/debug/cache/load", config)
}

func (c *Client) graph(ctx context.Context, method, path string, body []byte) (*Graph, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("buildkitd debug address %s: %w (is buildkitd started with --debugaddr there?)", c.addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxGraph+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("buildkitd debug address %s: reading %s: %w", c.addr, path, err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("buildkitd debug address %s: %s %s: %s: %s", c.addr, method, path, resp.Status, firstLine(b))
	case len(b) > maxGraph:
		return nil, fmt.Errorf("buildkitd debug address %s: %s is larger than %d MiB", c.addr, path, maxGraph>>20)
	}
	g, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("buildkitd debug address %s: %s: %w", c.addr, path, err)
	}
	return g, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
