package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/solver/remote/gittest"
)

func TestPickRef(t *testing.T) {
	out := []byte("1111\tHEAD\n2222\trefs/heads/main\n3333\trefs/tags/v1\n4444\trefs/tags/v1^{}\n5555\trefs/tags/light\n")
	for _, tc := range []struct {
		ref, want string
		err       error
	}{
		{"HEAD", "1111", nil},
		{"main", "2222", nil},
		{"v1", "4444", nil}, // an annotated tag: its commit, not the tag object
		{"light", "5555", nil},
		{"nope", "", ErrNoSuchRef},
	} {
		got, err := pickRef(out, tc.ref)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("pickRef(%q) = %q, %v; want %q, %v", tc.ref, got, err, tc.want, tc.err)
		}
	}
}

// TestGitCommit against a real git daemon: the branch's commit, which a
// new commit moves; a subdir and the default branch; a commit URL needs
// no lookup; a missing branch is an error.
func TestGitCommit(t *testing.T) {
	d := gittest.Start(t)
	c1 := d.Commit(t, "repo", map[string]string{"sub/a.txt": "one"})
	ctx := context.Background()
	for _, url := range []string{d.URL("repo") + "#main", d.URL("repo") + "#main:sub", d.URL("repo")} {
		if got, err := GitCommit(ctx, url); err != nil || got != c1 {
			t.Errorf("GitCommit(%s) = %q, %v; want %s", url, got, err, c1)
		}
	}
	c2 := d.Commit(t, "repo", map[string]string{"sub/a.txt": "two"})
	if got, _ := GitCommit(ctx, d.URL("repo")+"#main"); got != c2 {
		t.Errorf("after a new commit: %s, want %s", got, c2)
	}
	if got, err := GitCommit(ctx, "https://example.invalid/x.git#"+c1); err != nil || got != c1 {
		t.Errorf("a commit URL: %q, %v", got, err)
	}
	if _, err := GitCommit(ctx, d.URL("repo")+"#nope"); !errors.Is(err, ErrNoSuchRef) {
		t.Errorf("missing branch: %v", err)
	}
	if _, err := GitCommit(ctx, d.URL("absent")+"#main"); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("missing repository: %v", err)
	}
	pinned, err := PinGit(d.URL("repo")+"#main:sub", c2)
	if err != nil || pinned != d.URL("repo")+"#"+c2+":sub" {
		t.Errorf("PinGit = %q, %v", pinned, err)
	}
}

// TestHTTP: validators from a HEAD when the server gives them; the
// body's digest when it gives none; an error for a failure.
func TestHTTP(t *testing.T) {
	body := "content v1"
	mux := http.NewServeMux()
	mux.HandleFunc("/etag", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"abc"`)
		w.Write([]byte(body))
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Length"] = nil
		if r.Method == http.MethodGet {
			w.Write([]byte(body))
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	if got, err := HTTP(ctx, srv.URL+"/etag"); err != nil || !strings.Contains(got, `etag="abc"`) {
		t.Errorf("with an ETag: %q, %v", got, err)
	}
	v1, err := HTTP(ctx, srv.URL+"/plain")
	if err != nil || !strings.HasPrefix(v1, "sha256:") {
		t.Fatalf("without validators: %q, %v", v1, err)
	}
	body = "content v2"
	if v2, _ := HTTP(ctx, srv.URL+"/plain"); v2 == v1 {
		t.Error("the body changed, its digest did not")
	}
	if _, err := HTTP(ctx, srv.URL+"/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}
