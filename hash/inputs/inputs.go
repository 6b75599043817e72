// Package inputs gathers everything a service's image depends on (its
// Dockerfile, build settings and the files it can see) and computes the
// service's input hash over them: the tag its image is stored under.
package inputs

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/hash/canon"
	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/hash/statcache"
	"github.com/bkcache/bkcache/hash/tree"
	digest "github.com/opencontainers/go-digest"
)

// Scheme versions the service hash. Any change to what it covers or how
// it is encoded requires a new scheme, so old and new never collide.
// v2: source trees are bkcache/tree/v2 (file contents by BLAKE3).
// v3: the images a build reads, by digest (or as written, by mode).
// v4: the attestations the image carries (provenance, SBOM).
// v5: the keys BuildKit puts into every RUN step's cache key (network,
// extra hosts by name, /dev/shm size, ulimits).
const Scheme = "bkcache/v5"

// Inputs is everything that went into one service's hash.
type Inputs struct {
	Scheme     string            `json:"scheme"`
	Service    string            `json:"service"`
	Hash       digest.Digest     `json:"hash"`
	Dockerfile Dockerfile        `json:"dockerfile"`
	Args       map[string]string `json:"args"`
	Target     string            `json:"target"`
	Platforms  []string          `json:"platforms"`
	// Attestations change what R:H is (its index holds them); their
	// content (timestamps, build ids) is the build's, never hashed.
	Attestations Attestations      `json:"attestations"`
	Labels       map[string]string `json:"labels"`
	// Run are the keys BuildKit applies to every RUN step, as its steps'
	// cache keys hold them (see runKeys); absent when left at defaults.
	Run      map[string]string `json:"run,omitempty"`
	Secrets  []string          `json:"secrets"` // ids only, never values
	SSH      []string          `json:"ssh"`     // ids only
	Sources  []Source          `json:"sources"` // local directories, by name
	Services []ServiceRef      `json:"services"`
	Refs     []Ref             `json:"refs"` // image and remote contexts
	// BaseImages says how the images were hashed: by digest (Resolve)
	// or by ref as written (AsWritten).
	BaseImages BaseImages `json:"baseImages"`
	Images     []Image    `json:"images"`
	Remotes    []Remote   `json:"remotes"` // resolved, or as written, with the images
}

// Dockerfile identifies the Dockerfile by content.
type Dockerfile struct {
	Path string `json:"path,omitempty"` // as given, for people; not hashed
	// Content is the Dockerfile's text, so that a comparison can show
	// which lines changed. Only its digest enters the hash.
	Content string        `json:"content"`
	Inline  bool          `json:"inline,omitempty"`
	Digest  digest.Digest `json:"digest"`
	Stages  []string      `json:"stages"` // stages the target reaches
}

// Source is one local directory and the files of it that count.
type Source struct {
	Name       string               `json:"name"` // "context" or the additional context's name
	Dir        string               `json:"dir"`  // for people; not hashed
	IgnoreFile string               `json:"ignoreFile,omitempty"`
	Whole      bool                 `json:"whole"`
	Reason     string               `json:"reason,omitempty"`
	Patterns   []dockerfile.Pattern `json:"patterns,omitempty"`
	Digest     digest.Digest        `json:"digest"`
	Bytes      int64                `json:"bytes"`
	// Files point into memory shared with the run's other services that
	// read the same files the same way: treat them as read-only.
	Files []*File `json:"files"`
	// Excludes are the patterns read from IgnoreFile, which left files
	// out of Files: the solve sends the source with the same ones.
	Excludes []string `json:"-"`
}

// Paths returns the paths of the source the build reads, as BuildKit's
// FollowPaths takes them, or nil when it reads the whole source.
func (s *Source) Paths() []string {
	return (&dockerfile.Use{Whole: s.Whole, Patterns: s.Patterns}).Paths()
}

// File is one entry of a source that entered the hash.
type File struct {
	Path   string        `json:"path"`
	Type   string        `json:"type"`
	Mode   string        `json:"mode"` // octal permission bits
	Link   string        `json:"link,omitempty"`
	Size   int64         `json:"size,omitempty"`
	Digest digest.Digest `json:"digest,omitempty"`
	By     string        `json:"by,omitempty"` // the instruction that pulled it in
}

// ServiceRef is a `service:` context: it enters the hash as that
// service's own hash.
type ServiceRef struct {
	Name    string        `json:"name"`
	Service string        `json:"service"`
	Hash    digest.Digest `json:"hash"`
}

// Attestations are the supply-chain attestations asked for, in the
// canonical forms of compose.ParseProvenance and compose.ParseSBOM.
type Attestations struct {
	Provenance string `json:"provenance"` // "" for none, else "mode=min" or "mode=max"
	SBOM       string `json:"sbom"`       // "" for none, else "generator=IMAGE"
}

// Ref is an image or remote context; it enters the hash as written.
type Ref struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Tag returns the hash as an image tag: its hex encoding.
func (in *Inputs) Tag() string { return in.Hash.Encoded() }

// Error is a failure to compute a service's inputs, naming the service.
type Error struct {
	Service string
	Err     error
}

func (e *Error) Error() string { return fmt.Sprintf("service %q: %v", e.Service, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Options tune ComputeAll.
type Options struct {
	Workers int // files digested at once; zero means GOMAXPROCS
	// StatCache, when set, supplies the digests of files unchanged since
	// an earlier run read them; the caller saves it afterwards.
	StatCache *statcache.Store
	// Resolver looks the images up; nil hashes them as written.
	Resolver Resolver
	// Done, when set, is called with each service's index in the
	// services given and its inputs as soon as they are complete, while
	// others may still be hashing (so from several goroutines at once).
	// Inputs a later failure discards may have been passed to it; when
	// ComputeAll succeeds, it was called once for every service.
	Done func(i int, in *Inputs)
	// Redact names the build args whose values the inputs must not let
	// anyone recover; with its key they hold, and the hash covers, a MAC
	// of each instead of the value (see Redaction).
	Redact Redaction

	// shared, when set, is what the run's services share of the
	// directories they all read: each walked and each file digested once.
	shared *shared
	// reference, for tests, hashes each source with its own walk, as
	// the shared path must match.
	reference bool
}

// prepared is a service whose Dockerfile has been read and analyzed: what
// its hash needs from elsewhere (dependencies' hashes, images' digests)
// is known, not yet looked up.
type prepared struct {
	svc     *compose.Service
	in      *Inputs
	an      *dockerfile.Analysis
	local   map[string]string // local sources by name
	deps    []ServiceRef      // service: contexts, hashes still to fill in
	images  []Image           // normalized, digests still to fill in
	remotes []Remote          // still to resolve
}

func prepare(svc *compose.Service) (*prepared, error) {
	p := &prepared{svc: svc, local: map[string]string{}, in: &Inputs{
		Scheme:    Scheme,
		Service:   svc.Name,
		Args:      orEmpty(svc.Args),
		Target:    svc.Target,
		Platforms: sortedCopy(svc.Platforms),
		Attestations: Attestations{
			Provenance: svc.Attestations.Provenance,
			SBOM:       svc.Attestations.SBOM,
		},
		Labels:   orEmpty(svc.Labels),
		Run:      runKeys(svc.Run),
		Sources:  []Source{},
		Services: []ServiceRef{},
		Refs:     []Ref{},
		Images:   []Image{},
	}}
	in := p.in
	for _, s := range svc.Secrets {
		in.Secrets = append(in.Secrets, s.ID)
	}
	for _, s := range svc.SSH {
		in.SSH = append(in.SSH, s.ID)
	}
	in.Secrets, in.SSH = sortedCopy(in.Secrets), sortedCopy(in.SSH)

	df, err := readDockerfile(svc)
	if err != nil {
		return nil, err
	}
	in.Dockerfile = Dockerfile{Path: svc.Dockerfile, Inline: svc.DockerfileInline != "", Digest: digest.FromBytes(df), Content: string(df)}
	imageContexts := p.classify()
	names := slices.Sorted(maps.Keys(p.local))
	if svc.DockerfileInline == "" && svc.Context.Kind == compose.RemoteContext {
		// The Dockerfile is in the remote context, which enters the hash
		// by what it resolves to; there is no file here to analyze. (The
		// images that Dockerfile reads are not looked up.)
		p.an = &dockerfile.Analysis{Sources: map[string]*dockerfile.Use{}}
		p.remotes = remotesOf(p.an, p.in.Refs)
		return p, nil
	}
	an, err := dockerfile.Analyze(df, dockerfile.Options{
		Target:    svc.Target,
		BuildArgs: svc.Args,
		Platforms: svc.Platforms,
		Contexts:  slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == dockerfile.MainContext }),
		Named:     slices.Sorted(maps.Keys(svc.Contexts)),
	})
	if err != nil {
		return nil, fmt.Errorf("Dockerfile %s: %w", dockerfileName(svc), err)
	}
	p.an = an
	in.Dockerfile.Stages = an.Stages
	if p.images, err = imagesOf(an, imageContexts); err != nil {
		return nil, err
	}
	p.remotes = remotesOf(an, p.in.Refs)
	return p, nil
}

// classify sorts the contexts: local ones are analyzed, service: ones
// enter as their service's hash, the others as what they name, the main
// context first. It returns the image contexts, by name.
func (p *prepared) classify() map[string]string {
	svc, images := p.svc, map[string]string{}
	names := append([]string{dockerfile.MainContext}, slices.Sorted(maps.Keys(svc.Contexts))...)
	for _, name := range names {
		c := svc.Context
		if name != dockerfile.MainContext {
			c = svc.Contexts[name]
		}
		switch c.Kind {
		case compose.ServiceContext:
			p.deps = append(p.deps, ServiceRef{Name: name, Service: c.Source})
		case compose.LocalContext:
			p.local[name] = c.Source
		default:
			if c.Kind == compose.ImageContext {
				images[name] = c.Source
			}
			p.in.Refs = append(p.in.Refs, Ref{Name: name, Value: c.String()})
		}
	}
	return images
}

// finish hashes the local sources and the whole, given the hashes of the
// services depended on and the digests of the images read.
func (p *prepared) finish(ctx context.Context, deps map[string]digest.Digest, res resolved, opt Options) (*Inputs, error) {
	in, err := p.complete(ctx, deps, res, opt)
	if err != nil {
		return nil, &Error{Service: p.svc.Name, Err: err}
	}
	return in, nil
}

func (p *prepared) complete(ctx context.Context, deps map[string]digest.Digest, res resolved, opt Options) (*Inputs, error) {
	in := p.in
	for _, s := range p.deps {
		h, ok := deps[s.Service]
		if !ok {
			return nil, fmt.Errorf("additional context %q: the hash of service %q is not known yet", s.Name, s.Service)
		}
		s.Hash = h
		in.Services = append(in.Services, s)
	}
	in.BaseImages = AsWritten
	if opt.Resolver != nil {
		in.BaseImages = Resolve
		if p.an.Undecided != "" {
			return nil, fmt.Errorf("%w: %s: give the arg a value (build args, platforms:)", ErrUndecidedImage, p.an.Undecided)
		}
	}
	for _, im := range p.images {
		if opt.Resolver != nil && im.Digest == "" {
			im.Digest = res.images[im.Ref]
		}
		in.Images = append(in.Images, im)
	}
	in.Remotes = []Remote{}
	for _, r := range p.remotes {
		if opt.Resolver != nil && r.Checksum == "" {
			r.Resolved = res.remotes[r.URL]
		}
		in.Remotes = append(in.Remotes, r)
	}
	for _, name := range slices.Sorted(maps.Keys(p.local)) {
		use := p.an.Sources[name]
		if use == nil {
			continue // the Dockerfile never reads this source
		}
		src, err := hashSource(ctx, p.svc, name, p.local[name], use, opt)
		if err != nil {
			return nil, err
		}
		in.Sources = append(in.Sources, *src)
	}
	h, err := in.digest()
	if err != nil {
		return nil, err
	}
	in.Hash = h
	return in, nil
}

func readDockerfile(svc *compose.Service) ([]byte, error) {
	if svc.DockerfileInline != "" {
		return []byte(svc.DockerfileInline), nil
	}
	if svc.Context.Kind == compose.RemoteContext {
		// The Dockerfile is inside the remote context: the context ref
		// covers it. Hash its name so that pointing elsewhere moves it.
		return []byte("remote:" + svc.Dockerfile), nil
	}
	// As BuildKit reads it: from the Dockerfile's directory, a link
	// resolved inside it, and only a regular file.
	b, err := source.ReadFile(filepath.Dir(svc.Dockerfile), filepath.Base(svc.Dockerfile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("Dockerfile %s does not exist (a symlink is followed only inside its directory): check build.dockerfile and build.context", svc.Dockerfile)
	}
	if errors.Is(err, source.ErrNotRegular) {
		return nil, fmt.Errorf("Dockerfile %s is not a regular file (a FIFO, socket, device or directory): point build.dockerfile at a file", svc.Dockerfile)
	}
	if err != nil {
		return nil, fmt.Errorf("reading Dockerfile: %w", err)
	}
	return b, nil
}

func dockerfileName(svc *compose.Service) string {
	if svc.DockerfileInline != "" {
		return "(dockerfile_inline)"
	}
	return svc.Dockerfile
}

func hashSource(ctx context.Context, svc *compose.Service, name, dir string, use *dockerfile.Use, opt Options) (*Source, error) {
	var ignores []string
	if name == dockerfile.MainContext && svc.Dockerfile != "" {
		ignores = append(ignores, svc.Dockerfile+".dockerignore")
	}
	ignores = append(ignores, ".dockerignore")
	s, err := source.Open(dir, ignores...)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s does not exist: check build.context and additional_contexts", dockerfile.DescribeSource(name), dir)
		}
		return nil, fmt.Errorf("%s %s: %w", dockerfile.DescribeSource(name), dir, err)
	}
	sel, err := selectFiles(ctx, s, use, opt)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", dockerfile.DescribeSource(name), dir, err)
	}
	out := &Source{
		Name: name, Dir: dir, IgnoreFile: s.IgnoreFile, Excludes: s.Excludes,
		Whole: use.Whole, Reason: use.Reason, Patterns: use.Patterns,
		Digest: sel.digest, Files: sel.files,
	}
	for _, e := range sel.entries {
		out.Bytes += e.Size
	}
	return out, nil
}

// selected is what a service takes of a source: the entries, sorted,
// their tree digest, and their descriptions.
type selected struct {
	entries []*tree.Entry
	digest  digest.Digest
	files   []*File
}

// selectFiles returns what use selects of s: from the parts shared with
// the run's other services where there are some, else from one walk.
func selectFiles(ctx context.Context, s *source.Source, use *dockerfile.Use, opt Options) (*selected, error) {
	if opt.shared != nil {
		return opt.shared.selection(ctx, s, use, opt)
	}
	topt := tree.Options{Workers: opt.Workers, Cache: opt.cacheFor(s)}
	if x := newExcluder(use); x != nil {
		topt.Skip = x.skip
	}
	fsys, err := s.FS(use.Paths())
	if err != nil {
		return nil, err
	}
	res, err := tree.Hash(ctx, fsys, topt)
	if err != nil {
		return nil, err
	}
	return &selected{entries: res.Entries, digest: res.Digest, files: describeFiles(res.Entries, use)}, nil
}

// cacheFor is where the digests of s's files come from: the run's
// listing of s.Dir, else the stat cache, else nowhere. It sets s to walk
// that listing, or to record identities for the stat cache, and to take
// the names in unchanged directories from the stat cache.
func (opt Options) cacheFor(s *source.Source) tree.Cache {
	disk := opt.StatCache.For(s.Dir)
	s.Dirs = disk.Dirs()
	if opt.shared != nil {
		s.Listing = opt.shared.listings.For(s.Dir)
	}
	switch {
	case s.Listing != nil && disk != nil:
		return layered{s.Listing, disk}
	case s.Listing != nil:
		return s.Listing
	case disk != nil:
		s.Identities = true
		return disk
	}
	return nil
}

// layered answers from the run's listing first, then from the stat cache
// on disk, and teaches both.
type layered struct {
	run  *source.Listing
	disk *statcache.Cache
}

func (c layered) Lookup(path string, id source.Identity) (digest.Digest, bool) {
	if d, ok := c.run.Lookup(path, id); ok {
		return d, true
	}
	d, ok := c.disk.Lookup(path, id)
	if ok {
		c.run.Store(path, id, d)
	}
	return d, ok
}

func (c layered) Store(path string, id source.Identity, d digest.Digest) {
	c.run.Store(path, id, d)
	c.disk.Store(path, id, d)
}

// describeFiles describes entries, in parts of 4,096 run in parallel:
// the descriptions are fresh memory, and on this VM faulting its pages in
// (10 us each) costs more than filling them. Each part has an attributor
// of its own, since pattern matchers compile on first use and are not
// safe for concurrent use.
func describeFiles(entries []*tree.Entry, use *dockerfile.Use) []*File {
	const part = 4096
	files, ptrs := make([]File, len(entries)), make([]*File, len(entries))
	var wg sync.WaitGroup
	for start := 0; start < len(entries); start += part {
		wg.Go(func() {
			attr := newAttributor(use)
			for i := start; i < min(start+part, len(entries)); i++ {
				e := entries[i]
				files[i] = File{
					Path: e.Path, Type: e.Type.String(), Mode: octal4(e.Perm),
					Link: e.Linkname, Size: e.Size, Digest: e.Digest, By: attr.by(e.Path),
				}
				ptrs[i] = &files[i]
			}
		})
	}
	wg.Wait()
	return ptrs
}

// octal4 formats permission bits (at most 0o7777) as four octal digits,
// as fmt's %04o does, without its cost on every file of a large tree.
func octal4(p uint32) string {
	return string([]byte{'0' + byte(p>>9&7), '0' + byte(p>>6&7), '0' + byte(p>>3&7), '0' + byte(p&7)})
}

// digest encodes the inputs canonically. Paths on this machine (the
// Dockerfile's, the sources' directories) stay out, so the same inputs
// hash alike anywhere.
func (in *Inputs) digest() (digest.Digest, error) {
	h := sha256.New()
	w := canon.NewWriter(h)
	w.Scheme(Scheme)
	group := func(name string, fields ...string) {
		w.Begin(name)
		for _, f := range fields {
			w.String(f)
		}
		w.End()
	}
	group("dockerfile", in.Dockerfile.Digest.String())
	writeMap(w, "args", in.Args)
	group("target", in.Target)
	w.Begin("platforms")
	w.Strings(in.Platforms)
	w.End()
	group("attestations", in.Attestations.Provenance, in.Attestations.SBOM)
	writeMap(w, "labels", in.Labels)
	writeMap(w, "run", in.Run)
	w.Begin("secrets")
	w.Strings(in.Secrets)
	w.End()
	w.Begin("ssh")
	w.Strings(in.SSH)
	w.End()
	for _, s := range in.Sources {
		group("source", s.Name, s.Digest.String())
	}
	for _, s := range in.Services {
		group("service", s.Name, s.Hash.String())
	}
	for _, r := range in.Refs {
		group("ref", r.Name, r.Value)
	}
	group("base-images", string(in.BaseImages))
	for _, im := range in.Images {
		group("image", im.Ref, im.Digest.String())
	}
	for _, r := range in.Remotes {
		group("remote", r.URL, r.Kind, r.Resolved, r.Checksum)
	}
	if err := w.Err(); err != nil {
		return "", fmt.Errorf("encoding the inputs: %w", err)
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), nil
}

// runKeys is what of r enters the hash: exactly what BuildKit keys a RUN
// step on, so that a change BuildKit would re-run the step for moves the
// hash, and no other. Extra hosts count by name only: BuildKit drops
// their addresses from the key (ExecOp.CacheMap), and the files a step
// makes cannot depend on them. Keys at their defaults are left out.
// They count even when no RUN step is reached, since a base image's
// ONBUILD RUN gets them too.
func runKeys(r compose.Run) map[string]string {
	m := map[string]string{}
	if r.Network != compose.NetworkDefault {
		m["network"] = string(r.Network)
	}
	if len(r.ExtraHosts) > 0 {
		names := make([]string, len(r.ExtraHosts))
		for i, h := range r.ExtraHosts {
			names[i] = h.Name
		}
		m["extra_hosts"] = strings.Join(names, ",")
	}
	if r.ShmSize > 0 {
		m["shm_size"] = strconv.FormatInt(r.ShmSize, 10)
	}
	if len(r.Ulimits) > 0 {
		m["ulimits"] = r.UlimitsAttr()
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func writeMap(w *canon.Writer, name string, m map[string]string) {
	w.Begin(name)
	w.Uint(uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.String(k)
		w.String(m[k])
	}
	w.End()
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	slices.SortFunc(out, cmp.Compare[string])
	return out
}
