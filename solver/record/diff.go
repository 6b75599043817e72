package record

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/hash/inputs"
)

// Change is one setting that differs: added (Old empty), removed (New
// empty) or changed.
type Change struct {
	Key string `json:"key"`
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// FileChange is one file that differs within a source.
type FileChange struct {
	Source string `json:"source"`
	Path   string `json:"path"`
	Kind   string `json:"kind"` // added, removed, modified, mode, type, link
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
}

// LineChange is one Dockerfile line added or removed.
type LineChange struct {
	Op   string `json:"op"` // "+" or "-"
	Line int    `json:"line"`
	Text string `json:"text"`
}

// Report says why two records of a service differ. Same is true when the
// hashes match: nothing the image depends on changed.
type Report struct {
	Service    string       `json:"service"`
	OldHash    string       `json:"oldHash"`
	NewHash    string       `json:"newHash"`
	Same       bool         `json:"same"`
	Scheme     *Change      `json:"scheme,omitempty"`
	Dockerfile []LineChange `json:"dockerfile,omitempty"`
	// DockerfileChanged is set when the digests differ, even if the old
	// text is not known (a record without it).
	DockerfileChanged bool `json:"dockerfileChanged"`
	// DockerfileReplaced is set, and Dockerfile empty, when the two texts
	// are too large to compare line by line.
	DockerfileReplaced bool     `json:"dockerfileReplaced,omitempty"`
	Settings           []Change `json:"settings,omitempty"` // target, platforms, stages, the keys of RUN steps
	Args               []Change `json:"args,omitempty"`
	Labels             []Change `json:"labels,omitempty"`
	Secrets            []Change `json:"secrets,omitempty"`
	SSH                []Change `json:"ssh,omitempty"`
	Contexts           []Change `json:"contexts,omitempty"` // service:, image and remote contexts, sources
	// Images are the images the build reads, by ref: a moved tag shows
	// as its digest changing; BaseImages the mode they were hashed in.
	Images     []Change     `json:"images,omitempty"`
	Remotes    []Change     `json:"remotes,omitempty"` // Git commits, HTTP validators, by URL
	BaseImages *Change      `json:"baseImages,omitempty"`
	Files      []FileChange `json:"files,omitempty"`
}

// Empty reports whether the report names no change at all.
func (r *Report) Empty() bool {
	return r.Scheme == nil && !r.DockerfileChanged && len(r.Settings) == 0 && len(r.Args) == 0 &&
		len(r.Labels) == 0 && len(r.Secrets) == 0 && len(r.SSH) == 0 && len(r.Contexts) == 0 && len(r.Files) == 0 &&
		len(r.Images) == 0 && len(r.Remotes) == 0 && r.BaseImages == nil
}

// settings are the build settings Compare reports by name.
// The keys of RUN steps count by their compose names, and only when set.
func settings(in *inputs.Inputs) map[string]string {
	m := map[string]string{
		"target": in.Target, "platforms": strings.Join(in.Platforms, ","), "stages": strings.Join(in.Dockerfile.Stages, ","),
		"provenance": OrNone(in.Attestations.Provenance), "sbom": OrNone(in.Attestations.SBOM),
	}
	maps.Copy(m, in.Run)
	return m
}

// OrNone is s, or "none" for an empty setting, as bkcache shows settings
// to people.
func OrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Compare explains how the inputs in cur differ from those in old. The
// args red names are redacted on both sides first, as are those either
// side recorded redacted: no value of theirs is shown, only whether it
// changed, where red's key can tell.
func Compare(old, cur *inputs.Inputs, red inputs.Redaction) *Report {
	old, cur = red.Inputs(old), red.Inputs(cur)
	r := &Report{Service: cur.Service, OldHash: old.Hash.Encoded(), NewHash: cur.Hash.Encoded(), Same: old.Hash == cur.Hash}
	if old.Scheme != cur.Scheme {
		r.Scheme = &Change{Key: "scheme", Old: old.Scheme, New: cur.Scheme}
	}
	if old.Dockerfile.Digest != cur.Dockerfile.Digest {
		r.DockerfileChanged = true
		r.Dockerfile, r.DockerfileReplaced = lineDiff(old.Dockerfile.Content, cur.Dockerfile.Content)
	}
	r.Settings = diffMaps(
		settings(old), settings(cur),
	)
	r.Args = diffMaps(redactedAlike(old.Args, cur.Args, red))
	r.Labels = diffMaps(old.Labels, cur.Labels)
	r.Secrets = diffMaps(set(old.Secrets), set(cur.Secrets))
	r.SSH = diffMaps(set(old.SSH), set(cur.SSH))
	r.Contexts = diffMaps(contexts(old), contexts(cur))
	r.Images = diffMaps(images(old), images(cur))
	r.Remotes = diffMaps(remotes(old), remotes(cur))
	if old.BaseImages != cur.BaseImages {
		r.BaseImages = &Change{Key: "base images", Old: string(old.BaseImages), New: string(cur.BaseImages)}
	}

	oldSrc, curSrc := sources(old), sources(cur)
	for _, name := range union(oldSrc, curSrc) {
		r.Files = append(r.Files, diffFiles(name, oldSrc[name], curSrc[name])...)
	}
	return r
}

// images maps each image read to its digest, or "as written".
func images(in *inputs.Inputs) map[string]string {
	m := map[string]string{}
	for _, im := range in.Images {
		m[im.Ref] = cmp.Or(im.Digest.String(), "as written")
	}
	return m
}

// remotes maps each remote source to what it resolved to.
func remotes(in *inputs.Inputs) map[string]string {
	m := map[string]string{}
	for _, r := range in.Remotes {
		m[r.URL] = cmp.Or(r.Resolved, r.Checksum, "as written")
	}
	return m
}

func set(ids []string) map[string]string {
	m := map[string]string{}
	for _, id := range ids {
		m[id] = "id"
	}
	return m
}

// contexts flattens the non-file contexts and the source list: a
// service: dependency whose hash moved shows as a changed context.
func contexts(in *inputs.Inputs) map[string]string {
	m := map[string]string{}
	for _, s := range in.Services {
		m[s.Name] = "service:" + s.Service + "@" + s.Hash.Encoded()
	}
	for _, ref := range in.Refs {
		m[ref.Name] = ref.Value
	}
	for _, s := range in.Sources {
		v := "local"
		if s.Whole {
			v = "local (whole source)"
		}
		if _, taken := m[s.Name]; !taken {
			m[s.Name] = v
		}
	}
	return m
}

func sources(in *inputs.Inputs) map[string]*inputs.Source {
	m := map[string]*inputs.Source{}
	for i := range in.Sources {
		m[in.Sources[i].Name] = &in.Sources[i]
	}
	return m
}

func union[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// redactedAlike returns old and cur with each arg that one of them
// records redacted in the same form in the other (see Redactor.alike): a
// record written with --redact-arg compared with inputs that are not
// (explain's current inputs, or a record written without the flag) must
// show a change of MACs, never the value, and no change where the value
// is the same.
func redactedAlike(old, cur map[string]string, red inputs.Redaction) (map[string]string, map[string]string) {
	o, c := maps.Clone(old), maps.Clone(cur)
	for k, v := range old {
		if w, ok := cur[k]; ok && isRedacted(v) {
			o[k], c[k] = alike(red, v, w)
		}
	}
	for k, w := range cur {
		if v, ok := old[k]; ok && isRedacted(w) && !isRedacted(v) {
			c[k], o[k] = alike(red, w, v)
		}
	}
	return o, c
}

func diffMaps(old, cur map[string]string) []Change {
	var out []Change
	for _, k := range union(old, cur) {
		o, okOld := old[k]
		n, okNew := cur[k]
		if okOld && okNew && o == n {
			continue
		}
		out = append(out, Change{Key: k, Old: o, New: n})
	}
	return out
}

func diffFiles(source string, old, cur *inputs.Source) []FileChange {
	files := func(s *inputs.Source) map[string]inputs.File {
		m := map[string]inputs.File{}
		if s != nil {
			for _, f := range s.Files {
				m[f.Path] = *f
			}
		}
		return m
	}
	o, n := files(old), files(cur)
	var out []FileChange
	for _, p := range union(o, n) {
		of, inOld := o[p]
		nf, inNew := n[p]
		switch {
		case !inOld:
			out = append(out, FileChange{Source: source, Path: p, Kind: "added", New: describe(nf)})
		case !inNew:
			out = append(out, FileChange{Source: source, Path: p, Kind: "removed", Old: describe(of)})
		case of.Type != nf.Type:
			out = append(out, FileChange{Source: source, Path: p, Kind: "type", Old: of.Type, New: nf.Type})
		case of.Link != nf.Link:
			out = append(out, FileChange{Source: source, Path: p, Kind: "link", Old: of.Link, New: nf.Link})
		case of.Digest != nf.Digest:
			out = append(out, FileChange{Source: source, Path: p, Kind: "modified", Old: of.Digest.String(), New: nf.Digest.String()})
			if of.Mode != nf.Mode {
				out = append(out, FileChange{Source: source, Path: p, Kind: "mode", Old: of.Mode, New: nf.Mode})
			}
		case of.Mode != nf.Mode:
			out = append(out, FileChange{Source: source, Path: p, Kind: "mode", Old: of.Mode, New: nf.Mode})
		}
	}
	return out
}

func describe(f inputs.File) string {
	if f.Link != "" {
		return f.Type + " -> " + f.Link
	}
	if f.Digest != "" {
		return f.Type + " " + f.Mode + " " + f.Digest.String()
	}
	return f.Type + " " + f.Mode
}
