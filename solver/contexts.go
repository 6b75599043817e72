package solver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/tonistiigi/fsutil"
)

// The services of a run that read one local directory (as their build
// context or as an additional context, with the same ignore file) are
// sent it as one local source: the paths that all of them that solve
// read, through one session per directory and node that every solve of
// the run shares. Their solves then hold the same source, which
// buildkitd runs once for all of them that are running together, and it
// keeps one copy of it, which the next run's transfer only brings up to
// date. The Dockerfile frontend's own context is one source per solve
// with that service's paths, and buildkitd keeps one copy for all of
// them, which each transfer turns into the next service's selection, or
// another copy per solve running at once: the first build of 200
// services of a monorepo sent its lib/ 16 times. (One source per path,
// merged, sends lib/ once too, but buildkitd then hashes every merged
// context again for each COPY: it doubled the CPU time of that build.)
//
// Every service of a group still reads only its own paths: its COPY,
// ADD and RUN --mount instructions select them from the group's files,
// exactly as they select them from a context of its own.

// localContext is how a group's directory is sent.
type localContext struct {
	dir      string
	excludes []string // the ignore file's patterns, as the hash applied them
	paths    []string // FollowPaths; nil: the whole directory
}

// send is one local source of a job, by the name its Dockerfile knows it
// by ("context", or an additional context's), and the group that sends it.
type send struct {
	name  string
	group *contextGroup
}

// member is one job's source in a group.
type member struct {
	job  *plan.Job
	name string
}

// contextGroup is the sources of a run's jobs that are one directory with
// the same excludes. Its paths are fixed by the first solve: those of
// every member whose job is not known by then to be skipped.
type contextGroup struct {
	dir      string
	excludes []string
	mu       sync.Mutex
	paths    map[member][]string // nil: the whole directory
	skipped  map[*plan.Job]bool
	fixed    *localContext
}

// groupContexts returns, for each job, the local sources its Dockerfile
// reads, each with its group.
func groupContexts(jobs []*plan.Job) map[*plan.Job][]send {
	groups := map[string]*contextGroup{}
	out := map[*plan.Job][]send{}
	for _, j := range jobs {
		for _, src := range j.Inputs.Sources {
			dir, ok := localDir(j.Service, src.Name)
			if !ok {
				continue
			}
			key := dir + "\x00" + strings.Join(src.Excludes, "\x00")
			g := groups[key]
			if g == nil {
				g = &contextGroup{dir: dir, excludes: src.Excludes, paths: map[member][]string{}, skipped: map[*plan.Job]bool{}}
				groups[key] = g
			}
			g.paths[member{j, src.Name}] = src.Paths()
			out[j] = append(out[j], send{src.Name, g})
		}
	}
	return out
}

// localDir is the directory of svc's local source name.
func localDir(svc *compose.Service, name string) (string, bool) {
	if name == dockerfile.MainContext {
		return svc.Context.Source, svc.Context.Kind != compose.RemoteContext
	}
	c, ok := svc.Contexts[name]
	return c.Source, ok && c.Kind == compose.LocalContext
}

// skip records that j will not be solved, so that its paths are not sent
// unless another member reads them.
func skip(j *plan.Job, sends []send) {
	for _, s := range sends {
		s.group.mu.Lock()
		s.group.skipped[j] = true
		s.group.mu.Unlock()
	}
}

// context returns how the group is sent, fixing it on the first call.
func (g *contextGroup) context() *localContext {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fixed == nil {
		g.fixed = &localContext{dir: g.dir, excludes: g.excludes, paths: g.union()}
	}
	return g.fixed
}

// union is the sorted paths of the members whose job is not skipped,
// nil when one of them reads the whole directory.
func (g *contextGroup) union() []string {
	var out []string
	for m, ps := range g.paths {
		if g.skipped[m.job] {
			continue
		}
		if ps == nil {
			return nil
		}
		out = append(out, ps...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// state is the group's directory as a frontend input (the build context,
// or an additional context), read through session id: the same in every
// solve of the group, which is what lets buildkitd share it.
func (lc *localContext) state(id string) llb.State {
	return llb.Local(sourceName(lc.dir),
		llb.SessionID(id),
		llb.FollowPaths(lc.paths),
		llb.ExcludePatterns(lc.excludes),
		llb.SharedKeyHint(lc.hint()),
		llb.WithCustomName("[internal] load build context"),
	)
}

// hint names the copy buildkitd keeps of the directory between
// transfers, one per ignore file: not the paths, so that a run that
// solves other services of the group brings the same copy up to date.
func (lc *localContext) hint() string {
	sum := sha256.Sum256([]byte(strings.Join(lc.excludes, "\n")))
	return "bkcache:" + hex.EncodeToString(sum[:8])
}

// sourceName is what the sessions call dir: one name per directory, not
// the name the Dockerfile knows it by, since a group's one source serves
// every member, as their build context or as an additional context.
// buildkitd asks any session of the solve for that name when the shared
// one does not answer in time, so each solve's own session serves the
// directory under the same name too (withContext): under "context" it
// would find the service's own build context, and send its files as
// another directory's.
func sourceName(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "bkcache-" + hex.EncodeToString(sum[:8])
}

// contextSessions are one node's shared sessions, one per directory,
// each serving it under its sourceName to every solve of the run. A
// session that ends (buildkitd went away) is replaced by the next solve
// that needs it.
type contextSessions struct {
	c      *client.Client
	ctx    context.Context // the sessions', cancelled by close
	cancel context.CancelFunc
	mu     sync.Mutex
	live   map[string]*session.Session
	wg     sync.WaitGroup
}

func newContextSessions(c *client.Client) *contextSessions {
	ctx, cancel := context.WithCancel(context.Background())
	return &contextSessions{c: c, ctx: ctx, cancel: cancel, live: map[string]*session.Session{}}
}

// id returns the id of the session that serves dir, starting it first.
func (cs *contextSessions) id(dir string) (string, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if s, ok := cs.live[dir]; ok {
		return s.ID(), nil
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return "", err
	}
	s, err := session.NewSession(cs.ctx, sharedKey(dir))
	if err != nil {
		return "", err
	}
	s.Allow(filesync.NewFSSyncProvider(filesync.StaticDirSource{sourceName(dir): fs}))
	cs.live[dir] = s
	cs.wg.Go(func() {
		s.Run(cs.ctx, cs.c.Dialer())
		cs.mu.Lock()
		if cs.live[dir] == s {
			delete(cs.live, dir)
		}
		cs.mu.Unlock()
	})
	return s.ID(), nil
}

// ids are the ids of the sessions live now.
func (cs *contextSessions) ids() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []string
	for _, s := range cs.live {
		out = append(out, s.ID())
	}
	return out
}

// close ends every session; the run's solves are over.
func (cs *contextSessions) close() {
	cs.cancel() // a session still dialling a buildkitd that went away gives up
	cs.mu.Lock()
	live := slices.Collect(maps.Values(cs.live))
	cs.mu.Unlock()
	for _, s := range live {
		s.Close()
	}
	cs.wg.Wait()
}

// sharedKey is the same for dir on this machine run after run, so that
// buildkitd finds the copy of it that the last run left and the transfer
// sends only what changed since.
func sharedKey(dir string) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte("bkcache\x00" + host + "\x00" + dir))
	return hex.EncodeToString(sum[:16])
}

// withContext returns so with its local sources sent as their groups
// are, through n's shared session for each directory (and the solve's
// own, should buildkitd not find that one): the frontend takes them as
// inputs, the main context by its name and an additional context
// through "input:".
func (n *Node) withContext(so *client.SolveOpt, sends []send) (*client.SolveOpt, error) {
	if len(sends) == 0 {
		return so, nil
	}
	cp := *so
	cp.FrontendInputs = map[string]llb.State{}
	cp.FrontendAttrs = maps.Clone(so.FrontendAttrs)
	cp.LocalMounts = maps.Clone(so.LocalMounts)
	if cp.LocalMounts == nil {
		cp.LocalMounts = map[string]fsutil.FS{}
	}
	for _, s := range sends {
		lc := s.group.context()
		id, err := n.contexts.id(lc.dir)
		if err == nil {
			cp.LocalMounts[sourceName(lc.dir)], err = fsutil.NewFS(lc.dir)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", dockerfile.DescribeSource(s.name), lc.dir, err)
		}
		cp.FrontendInputs[s.name] = lc.state(id)
		if s.name != dockerfile.MainContext {
			cp.FrontendAttrs["context:"+s.name] = "input:" + s.name
		}
	}
	return &cp, nil
}
