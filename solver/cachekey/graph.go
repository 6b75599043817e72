// Package cachekey names the part of a BuildKit cache key that differed
// when a step ran that bkcache expected from cache. It reads the graphs
// of cache keys a buildkitd started with --save-cache-debug (BuildKit
// v0.24 and later) serves on its debug address: its own cache store, and
// an imported registry cache's config loaded into the same form, each
// key with the plaintexts it was computed from (an operation's
// definition, the file headers of the content a step reads).
package cachekey

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// A Record is one cache key of a graph, as buildkitd's debug endpoints
// give it: a root (a source, or the checksum of content a step read) or
// the result of an operation on its parents.
type Record struct {
	ID      int      `json:"id"`
	Digest  string   `json:"digest,omitempty"` // a root's key
	Random  bool     `json:"random,omitempty"` // a root that matches nothing outside its build
	Parents []Link   `json:"parents,omitempty"`
	Debug   []*Plain `json:"debug,omitempty"`
}

// A Link ties a record to the parent it was computed from: the
// operation (Digest), the input it takes the parent as, and the paths
// of it the operation reads (Selector), where it reads only some.
type Link struct {
	Input    int    `json:"input"`
	Digest   string `json:"digest,omitempty"`
	Selector string `json:"selector,omitempty"`
	Target   int    `json:"target"`
}

// A Plain is the plaintext a digest was computed from, with the
// plaintexts of the digests it holds.
type Plain struct {
	Digest string   `json:"digest"`
	Type   string   `json:"type"` // json, string, string-list, digest-list, file-list, file
	Data   []Frame  `json:"data,omitempty"`
	Sub    []*Plain `json:"subRecords,omitempty"`
}

// A Frame is a piece of a plaintext: data, or the length of data left
// out (a file's content).
type Frame struct {
	Type int    `json:"type"`
	Data []byte `json:"data,omitempty"`
}

const frameData = 2

// text is the plaintext's data, its frames joined.
func (p *Plain) text() string {
	var b strings.Builder
	for _, f := range p.Data {
		if f.Type == frameData {
			b.Write(f.Data)
		}
	}
	return b.String()
}

// Graph is a graph of cache keys, indexed.
type Graph struct {
	recs  map[int]*Record
	byOp  map[string][]*Record // non-root records by their operation's digest
	plain map[string]*Plain    // every plaintext by its digest
}

// Parse reads a graph as buildkitd's debug endpoints write it (JSON).
func Parse(b []byte) (*Graph, error) {
	var recs []*Record
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("malformed cache-key graph: %w", err)
	}
	return newGraph(recs)
}

func newGraph(recs []*Record) (*Graph, error) {
	g := &Graph{recs: map[int]*Record{}, byOp: map[string][]*Record{}, plain: map[string]*Plain{}}
	for _, r := range recs {
		if r == nil {
			return nil, fmt.Errorf("malformed cache-key graph: a null record")
		}
		if _, dup := g.recs[r.ID]; dup {
			return nil, fmt.Errorf("malformed cache-key graph: record %d twice", r.ID)
		}
		g.recs[r.ID] = r
		for _, p := range r.Debug {
			g.index(p)
		}
	}
	for _, r := range recs {
		for _, l := range r.Parents {
			if g.recs[l.Target] == nil {
				return nil, fmt.Errorf("malformed cache-key graph: record %d links to %d, which is not in it", r.ID, l.Target)
			}
		}
		if op := r.op(); op != "" {
			g.byOp[op] = append(g.byOp[op], r)
		}
	}
	return g, nil
}

func (g *Graph) index(p *Plain) {
	if p == nil || g.plain[p.Digest] != nil {
		return
	}
	g.plain[p.Digest] = p
	for _, s := range p.Sub {
		g.index(s)
	}
}

// merge adds other's records to g, renumbered past g's.
func (g *Graph) merge(other *Graph) {
	base := 0
	for id := range g.recs {
		base = max(base, id)
	}
	for _, r := range other.recs {
		cp := *r
		cp.ID += base
		cp.Parents = append([]Link(nil), r.Parents...)
		for i := range cp.Parents {
			cp.Parents[i].Target += base
		}
		g.recs[cp.ID] = &cp
		if op := cp.op(); op != "" {
			g.byOp[op] = append(g.byOp[op], &cp)
		}
	}
	for d, p := range other.plain {
		if g.plain[d] == nil {
			g.plain[d] = p
		}
	}
}

// op is the digest of the operation a non-root record is the result of.
func (r *Record) op() string {
	if len(r.Parents) == 0 {
		return ""
	}
	return r.Parents[0].Digest
}

// root reports whether r is a root: a source, or content's checksum.
func (r *Record) root() bool { return len(r.Parents) == 0 }

// hasSession reports whether r is a root of a local source sent by one
// of the sessions named.
func (g *Graph) hasSession(r *Record, sessions []string) bool {
	if !r.root() {
		return false
	}
	var found bool
	var walk func(p *Plain)
	walk = func(p *Plain) {
		for _, f := range p.Data {
			for _, s := range sessions {
				if bytes.Contains(f.Data, []byte(`"SessionID":"`+s+`"`)) {
					found = true
				}
			}
		}
		for _, s := range p.Sub {
			walk(s)
		}
	}
	if p := g.plain[r.Digest]; p != nil {
		walk(p)
	}
	return found
}

// HasPlaintexts reports whether the graph holds any plaintext: a daemon
// started without --save-cache-debug serves its keys without.
func (g *Graph) HasPlaintexts() bool { return len(g.plain) > 0 }
