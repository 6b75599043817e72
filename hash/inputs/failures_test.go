package inputs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	digest "github.com/opencontainers/go-digest"
)

// TestMoreErrorsNameTheCulprit: each failure a user can cause while the
// project hashes names the service and what to fix, and hashes nothing.
func TestMoreErrorsNameTheCulprit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		world *world // resolve mode when set
		want  []string
		is    error
	}{
		{"Dockerfile is a directory", map[string]string{
			"compose.yaml": "services:\n  app:\n    build: {context: ., dockerfile: df}\n", "df/x": "",
		}, nil, []string{`service "app"`, "not a regular file", "build.dockerfile"}, nil},
		{"invalid image reference", map[string]string{
			"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "FROM Bad:Ref\n",
		}, nil, []string{`service "app"`, "line 1: FROM Bad:Ref", "not a valid image reference"}, nil},
		{"image undecided in resolve mode", map[string]string{
			"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "FROM base-$TARGETARCH\n",
		}, newWorld(), []string{`service "app"`, "line 1", "give the arg a value"}, ErrUndecidedImage},
		{"download undecided in resolve mode", map[string]string{
			"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "FROM scratch\nARG TARGETARCH\nADD https://e.com/tool-$TARGETARCH /t\n",
		}, newWorld(), []string{`service "app"`, "line 3: ADD https://e.com/tool-$TARGETARCH /t may download", "$TARGETARCH", "give the arg a value"}, ErrUndecidedImage},
		{"a COPY pattern that does not parse, own walk", map[string]string{
			"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "FROM scratch\nCOPY a[ /x\n", "a": "1",
		}, nil, []string{`service "app"`, "build context", "syntax error in pattern"}, nil},
		{"a COPY pattern that does not parse, shared walk", map[string]string{
			"compose.yaml": "services:\n  app:\n    build: .\n  web:\n    build: {context: ., dockerfile: web.Dockerfile}\n",
			"Dockerfile":   "FROM scratch\nCOPY a[ /x\n", "web.Dockerfile": "FROM scratch\nCOPY a /x\n", "a": "1",
		}, nil, []string{`service "app"`, "build context", "syntax error in pattern"}, nil},
		{"additional context missing", map[string]string{
			"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      additional_contexts: {lib: ./lib}\n", "Dockerfile": "FROM scratch\nCOPY --from=lib a /a\n",
		}, nil, []string{`service "app"`, `additional context "lib"`, "does not exist"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sourcetest.Tree(t, tc.files)
			opt := Options{}
			if tc.world != nil {
				opt.Resolver = tc.world
			}
			var done []string
			opt.Done = func(_ int, in *Inputs) { done = append(done, in.Service) }
			got, err := ComputeAll(context.Background(), loadServices(t, dir), opt)
			if err == nil {
				t.Fatalf("no error; inputs %v", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var e *Error
			if !errors.As(err, &e) || e.Service != "app" {
				t.Errorf("error %v is not an *Error of service app", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			// Done may already have had another service's inputs (its
			// contract), never the failed one's.
			if got != nil || slices.Contains(done, "app") {
				t.Errorf("a failed run handed out inputs: %v, done %v", got, done)
			}
		})
	}
}

// failingWorld is a resolver whose lookups fail, as a registry that is
// down fails them.
type failingWorld struct{ world }

func (w *failingWorld) Resolve(_ context.Context, refs []string) (map[string]digest.Digest, error) {
	return nil, &ImageError{Ref: refs[0], Err: errors.New("registry down")}
}

// TestLookupFailureNamesTheService: a failed image lookup names the
// first service that reads the image.
func TestLookupFailureNamesTheService(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    build: .\n",
		"Dockerfile":   "FROM alpine:3.20\n",
	})
	_, err := ComputeAll(context.Background(), loadServices(t, dir), Options{Resolver: &failingWorld{}})
	var e *Error
	if !errors.As(err, &e) || e.Service != "app" || !strings.Contains(err.Error(), "registry down") || !strings.Contains(err.Error(), "alpine:3.20") {
		t.Fatalf("got %v, want the failure naming service app and the image", err)
	}
}

// TestDoneOncePerService: Done hears of every service once, with its
// index among the services given, and a cancelled run ends in an error
// (never in inputs half computed).
func TestDoneOncePerService(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, time.Now())
	svcs := loadServices(t, dir)
	var mu sync.Mutex
	seen := map[int]string{}
	all, err := ComputeAll(context.Background(), svcs, Options{Done: func(i int, in *Inputs) {
		mu.Lock()
		defer mu.Unlock()
		if _, twice := seen[i]; twice {
			t.Errorf("Done twice for %d", i)
		}
		seen[i] = in.Service
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range svcs {
		if seen[i] != s.Name || all[i].Service != s.Name {
			t.Errorf("index %d: Done had %q, the result %q, want %q", i, seen[i], all[i].Service, s.Name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := ComputeAll(ctx, svcs, Options{}); !errors.Is(err, context.Canceled) || got != nil {
		t.Errorf("cancelled: %v, %v; want context.Canceled and nothing", got, err)
	}
}

// TestOrderDoesNotMatter: secrets and ssh ids are sets, so the order a
// compose file lists them in moves nothing; nor do empty args and
// labels differ from absent ones.
func TestOrderDoesNotMatter(t *testing.T) {
	hashOf := func(compose string) string {
		dir := sourcetest.Tree(t, map[string]string{"compose.yaml": compose, "Dockerfile": "FROM scratch\n", "a": "", "b": ""})
		all, err := ComputeAll(context.Background(), loadServices(t, dir), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(all[0].Secrets) || !slices.IsSorted(all[0].SSH) {
			t.Errorf("ids not sorted: %v %v", all[0].Secrets, all[0].SSH)
		}
		return all[0].Hash.String()
	}
	const head = "services:\n  app:\n    build:\n      context: .\n"
	const tail = "secrets:\n  a: {file: ./a}\n  b: {file: ./b}\n"
	one := hashOf(head + "      secrets: [a, b]\n      ssh: [x=" + filepath.Join(os.TempDir(), "k1") + ", y=" + filepath.Join(os.TempDir(), "k2") + "]\n" + tail)
	other := hashOf(head + "      secrets: [b, a]\n      ssh: [y=" + filepath.Join(os.TempDir(), "k2") + ", x=" + filepath.Join(os.TempDir(), "k1") + "]\n" + tail)
	if one != other {
		t.Errorf("the order of secrets and ssh ids moved the hash")
	}
	if hashOf(head) != hashOf(head+"      args: {}\n      labels: {}\n") {
		t.Errorf("empty args and labels differ from none")
	}
}
