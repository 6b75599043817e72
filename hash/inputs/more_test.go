package inputs

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	digest "github.com/opencontainers/go-digest"
)

// TestFileJSONRefuses: a record's file entry that is not what Marshal
// writes is an error naming what is wrong, never a name read wrong.
func TestFileJSONRefuses(t *testing.T) {
	for in, want := range map[string]string{
		`{"path": 1}`:                                         "cannot unmarshal",
		`{"path": "a\\q", "pathEscaped": true}`:               "file path",
		`{"path": "a", "link": "\\x", "linkEscaped": true}`:   `link of "a"`,
		`{"path": "\\xff", "pathEscaped": true, "link": "b"}`: "",
	} {
		var f File
		err := json.Unmarshal([]byte(in), &f)
		switch {
		case want == "" && (err != nil || f.Path != "\xff" || f.Link != "b"):
			t.Errorf("%s: %+v %v, want path \\xff and link b", in, f, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want an error saying %q", in, err, want)
		}
	}
}

// TestLookupErrorsUnwrap: what a resolver failed with stays reachable.
func TestLookupErrorsUnwrap(t *testing.T) {
	cause := errors.New("cause")
	for _, err := range []error{&ImageError{Ref: "r", Err: cause}, &RemoteError{URL: "u", Err: cause}, &Error{Service: "s", Err: cause}} {
		if !errors.Is(err, cause) {
			t.Errorf("%T does not unwrap to its cause", err)
		}
	}
}

// failingRemotes fails remote lookups, as a Git server that is down.
type failingRemotes struct{ world }

func (w *failingRemotes) ResolveRemotes(_ context.Context, rs []Remote) (map[string]string, error) {
	return nil, &RemoteError{URL: rs[0].URL, Err: errors.New("server down")}
}

// TestLookupsNameTheFirstReader: an image or remote two services read is
// looked up once, and a failure names the first service (in the order
// given) that reads it.
func TestLookupsNameTheFirstReader(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  a:\n    build: {context: ., dockerfile: A}\n  b:\n    build: {context: ., dockerfile: B}\n",
		"A":            "FROM alpine:3.20\nADD https://e.com/t /t\n",
		"B":            "FROM alpine:3.20\nADD https://e.com/t /t\n",
	})
	svcs := loadServices(t, dir)
	w := newWorld()
	if _, err := ComputeAll(context.Background(), svcs, Options{Resolver: w}); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(w.asked); !slices.Equal(w.asked, []string{"docker.io/library/alpine:3.20", "https://e.com/t"}) {
		t.Errorf("asked %q, want each once", w.asked)
	}
	for _, r := range []Resolver{&failingWorld{}, &failingRemotes{}} {
		_, err := ComputeAll(context.Background(), svcs, Options{Resolver: r})
		var e *Error
		if !errors.As(err, &e) || e.Service != "a" {
			t.Errorf("%T: %v, want the failure of service a", r, err)
		}
	}
}

// TestResolveKeepsPins: in resolve mode an image pinned by digest keeps
// its own digest (it is not looked up), and what two instructions read
// is one image, or one remote, read by both.
func TestResolveKeepsPins(t *testing.T) {
	pin := "sha256:" + strings.Repeat("b", 64)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      additional_contexts: {base: 'docker-image://alpine:3.20'}\n",
		"Dockerfile":   "FROM alpine@" + pin + " AS a\nFROM alpine:3.20 AS b\nCOPY --from=a / /\nADD https://e.com/t /1\nADD https://e.com/t /2\nFROM alpine:3.20\nCOPY --from=b / /\n",
	})
	got, err := ComputeAll(context.Background(), loadServices(t, dir), Options{Resolver: newWorld()})
	if err != nil {
		t.Fatal(err)
	}
	in := got[0]
	var images []string
	for _, im := range in.Images {
		images = append(images, im.Ref+"@"+string(im.Digest)+" by "+strings.Join(im.By, "; "))
	}
	want := []string{
		"docker.io/library/alpine:3.20@" + string(digest.FromString("alpine")) + ` by line 2: FROM alpine:3.20; line 6: FROM alpine:3.20; additional context "base"`,
		"docker.io/library/alpine@" + pin + "@" + pin + " by line 1: FROM alpine@" + pin,
	}
	if !slices.Equal(images, want) {
		t.Errorf("images:\n%s\nwant\n%s", strings.Join(images, "\n"), strings.Join(want, "\n"))
	}
	if len(in.Remotes) != 1 || strings.Join(in.Remotes[0].By, "; ") != "line 4: ADD https://e.com/t /1; line 5: ADD https://e.com/t /2" {
		t.Errorf("remotes: %+v, want one read by lines 4 and 5", in.Remotes)
	}
}

// TestMoreSourceErrors: an image context that is no image reference, a
// context that is a file, a Dockerfile that is a loop of links: each
// fails naming it.
func TestMoreSourceErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  []string
	}{
		"image context": {map[string]string{
			"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      additional_contexts: {x: 'docker-image://Bad:Ref'}\n",
			"Dockerfile":   "FROM scratch\n",
		}, []string{`additional context "x"`, "not a valid image reference"}},
		"context is a file": {map[string]string{
			"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      additional_contexts: {lib: ./lib}\n",
			"Dockerfile":   "FROM scratch\nCOPY --from=lib a /a\n", "lib": "a file",
		}, []string{`additional context "lib"`, "lib"}},
		"Dockerfile loop": {map[string]string{
			"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "->Dockerfile",
		}, []string{`service "app"`, "Dockerfile"}},
		"Dockerfile named in a syntax error": {map[string]string{
			"compose.yaml": "services:\n  app:\n    build: {context: ., dockerfile: my.Dockerfile}\n", "my.Dockerfile": "FROM scratch\nCOPY --bogus x /\n",
		}, []string{`service "app"`, "my.Dockerfile", "line 2"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ComputeAll(context.Background(), loadServices(t, sourcetest.Tree(t, tc.files)), Options{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestRedactionCopies: the record's copy is redacted, the inputs the
// hash and the solve use are not; a keyed redaction names its key.
func TestRedactionCopies(t *testing.T) {
	in := &Inputs{Args: map[string]string{"TOKEN": "secret", "V": "1"}}
	for _, r := range []Redaction{NewRedaction([]string{"TOKEN"}, ""), NewRedaction([]string{"TOKEN"}, "k")} {
		out := r.Inputs(in)
		if out.Args["TOKEN"] == "secret" || out.Args["V"] != "1" || in.Args["TOKEN"] != "secret" {
			t.Errorf("keyed=%v: copy %v, original %v", r.Keyed(), out.Args, in.Args)
		}
	}
	k1, k2 := NewRedaction(nil, "k1"), NewRedaction(nil, "k2")
	if k1.KeyID() == k2.KeyID() || !strings.HasPrefix(k1.KeyID(), KeyedPrefix) || len(k1.KeyID()) != len(KeyedPrefix)+12+1 {
		t.Errorf("key ids %q and %q", k1.KeyID(), k2.KeyID())
	}
	if NewRedaction(nil, "").KeyID() != "" {
		t.Errorf("no key, yet a key id")
	}
}

// plainFailure fails with an error of no lookup type, as a resolver's
// transport may.
type plainFailure struct{ world }

func (w *plainFailure) Resolve(context.Context, []string) (map[string]digest.Digest, error) {
	return nil, errors.New("connection reset")
}

// TestResolveEdges: a pinned image is never looked up; a remote context
// with an inline Dockerfile still analyzes that Dockerfile (its images
// are looked up); a Git additional context is a remote, not an image;
// a lookup failing with any other error fails the run.
func TestResolveEdges(t *testing.T) {
	pin := "sha256:" + strings.Repeat("c", 64)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  pinned:\n    build: {context: ., dockerfile: P}\n" +
			"  inline:\n    build:\n      context: https://example.com/app.git#main\n      dockerfile_inline: \"FROM node:22\\n\"\n" +
			"  gitctx:\n    build:\n      context: .\n      dockerfile: G\n      additional_contexts: {src: 'https://example.com/app.git#main'}\n",
		"P": "FROM alpine@" + pin + "\n",
		"G": "FROM scratch\nCOPY --from=src / /\n",
	})
	w := newWorld()
	got, err := ComputeAll(context.Background(), loadServices(t, dir), Options{Resolver: w})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]*Inputs{}
	for _, in := range got {
		by[in.Service] = in
	}
	if slices.Contains(w.asked, "docker.io/library/alpine@"+pin) {
		t.Errorf("a pinned image was looked up: %q", w.asked)
	}
	if im := by["inline"].Images; len(im) != 1 || im[0].Ref != "docker.io/library/node:22" || im[0].Digest != digest.FromString("node22") {
		t.Errorf("inline Dockerfile in a remote context: images %+v, want node:22 resolved", im)
	}
	if r := by["gitctx"].Remotes; len(r) != 1 || r[0].Kind != "git" || r[0].Resolved != "commit-1" || len(by["gitctx"].Images) != 0 {
		t.Errorf("Git additional context: remotes %+v, images %+v", r, by["gitctx"].Images)
	}
	if _, err := ComputeAll(context.Background(), loadServices(t, dir), Options{Resolver: &plainFailure{}}); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("a lookup failing with a plain error: %v", err)
	}
}
