package cachekey

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
)

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// A file is what a content checksum holds of one file: its header
// fields (mode, uid, gid, size, typeflag, linkname...) in order, and the
// digest of header and content together.
type file struct {
	fields []string // "mode420", "uid0"...
	digest string
}

// files returns the files a content root's key was computed from, by
// path ("" for a single file or the directory itself, prefixed with the
// source's index where the root holds several sources), or false when
// the graph has no plaintext for it.
func (g *Graph) files(root string) (map[string]file, bool) {
	p := g.plain[root]
	if p == nil || len(p.Sub) == 0 || p.Sub[0].Type != "digest-list" {
		return nil, false
	}
	out := map[string]file{}
	list := p.Sub[0]
	for i, src := range list.Sub {
		prefix := ""
		if len(list.Sub) > 1 {
			prefix = fmt.Sprintf("#%d:", i+1)
		}
		switch src.Type {
		case "file":
			out[prefix] = g.file(src)
		case "file-list":
			name := ""
			for j, f := range src.Data {
				if f.Type != frameData {
					continue
				}
				if j%2 == 0 {
					name = strings.TrimLeft(string(f.Data), "\x00/")
					continue
				}
				if sub := g.plain[string(f.Data)]; sub != nil {
					out[prefix+name] = g.file(sub)
				} else {
					out[prefix+name] = file{digest: string(f.Data)}
				}
			}
		default:
			return nil, false
		}
	}
	return out, true
}

func (g *Graph) file(p *Plain) file {
	f := file{digest: p.Digest}
	for _, fr := range p.Data {
		if fr.Type == frameData {
			f.fields = append(f.fields, string(fr.Data))
		}
	}
	return f
}

// headerFields are the names of a file header's fields in a checksum's
// plaintext, each followed by its value ("uid1234").
var headerFields = []string{"name", "mode", "uid", "gid", "size", "typeflag", "linkname", "uname", "gname", "devmajor", "devminor"}

// diffFiles names, sorted, what differs between the files read now and
// those the imported cache's key read: "a.txt: uid 1234 (was 0)",
// "b.txt: its content", "c.txt: added". base names the sources'
// directory, prefixed to each path.
func diffFiles(now, was map[string]file, base string) []string {
	var out []string
	name := func(p string) string {
		switch {
		case p == "" && base == "":
			return "the source"
		case p == "":
			return base
		case base == "":
			return p
		}
		return strings.TrimSuffix(base, "/") + "/" + p
	}
	for p, f := range now {
		w, ok := was[p]
		switch {
		case !ok:
			out = append(out, name(p)+": added")
		case f.digest != w.digest:
			out = append(out, name(p)+": "+fieldDiff(f.fields, w.fields))
		}
	}
	for p := range was {
		if _, ok := now[p]; !ok {
			out = append(out, name(p)+": removed")
		}
	}
	sort.Strings(out)
	return out
}

// fieldDiff says which header fields differ, or that the content does.
func fieldDiff(now, was []string) string {
	split := func(fs []string) map[string]string {
		m := map[string]string{}
		for _, f := range fs {
			for _, h := range headerFields {
				if v, ok := strings.CutPrefix(f, h); ok {
					m[h] = v
					break
				}
			}
		}
		return m
	}
	n, w := split(now), split(was)
	var parts []string
	for _, h := range headerFields {
		if n[h] != w[h] {
			parts = append(parts, fmt.Sprintf("%s %s (was %s)", h, orNone(n[h]), orNone(w[h])))
		}
	}
	if len(parts) == 0 {
		return "its content"
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
