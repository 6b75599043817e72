// Package remote resolves the sources a build fetches from elsewhere
// than a registry to what they are now: a Git ref to its commit (as `git
// ls-remote` does), an HTTP resource to its validators or content.
package remote

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	"github.com/moby/buildkit/util/gitutil"
)

// Timeout bounds each HTTP request.
const Timeout = 30 * time.Second

// ErrNoSuchRef reports a Git ref the repository does not have.
var ErrNoSuchRef = errors.New("no such branch or tag")

// GitCommit returns the commit the Git URL (BuildKit's form, with an
// optional #REF:SUBDIR) names now: REF as a branch or tag, the default
// branch without one. A URL naming a commit needs no lookup.
func GitCommit(ctx context.Context, url string) (string, error) {
	g, remote, err := parseGit(url)
	if err != nil {
		return "", err
	}
	if gitutil.IsCommitSHA(g.Ref) {
		return g.Ref, nil
	}
	ref := g.Ref
	if ref == "" {
		ref = "HEAD"
	}
	cmd := exec.CommandContext(ctx, "git", "ls-remote", "--", remote, ref, "refs/tags/"+ref+"^{}")
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git ls-remote %s %s: %v: %s", remote, ref, err, strings.TrimSpace(stderr.String()))
	}
	return pickRef(out, ref)
}

// pickRef chooses, from ls-remote's output, the commit of ref: a peeled
// annotated tag's commit before the tag object, then a branch, then a tag,
// then whatever the remote matched (HEAD).
func pickRef(out []byte, ref string) (string, error) {
	found := map[string]string{}
	var first string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		sha, name, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		found[name] = sha
		if first == "" {
			first = sha
		}
	}
	for _, name := range []string{"refs/tags/" + ref + "^{}", "refs/heads/" + ref, "refs/tags/" + ref, ref} {
		if sha, ok := found[name]; ok {
			return sha, nil
		}
	}
	if first != "" && ref == "HEAD" {
		return first, nil
	}
	return "", fmt.Errorf("%w %q", ErrNoSuchRef, ref)
}

// parseGit reads a Git URL as BuildKit's frontend does, and returns
// the remote to fetch (github.com/x/y as https://github.com/x/y).
func parseGit(url string) (*dfgitutil.GitRef, string, error) {
	g, isGit, err := dfgitutil.ParseGitRef(url)
	if err != nil || !isGit {
		return nil, "", fmt.Errorf("not a Git URL: %v", err)
	}
	remote := g.Remote
	if g.IndistinguishableFromLocal {
		remote = "https://" + remote
	}
	return g, remote, nil
}

// PinGit returns the Git URL building exactly commit, with its subdir.
func PinGit(url, commit string) (string, error) {
	g, remote, err := parseGit(url)
	if err != nil {
		return "", err
	}
	pinned := remote + "#" + commit
	if g.SubDir != "" {
		pinned += ":" + g.SubDir
	}
	return pinned, nil
}

// GitSourceIDs returns the identifier BuildKit's llb.Git gives the
// source of url (host/path#ref:subdir, behind git://), and the same at
// commit: what a source policy converts to pin it. ok is false for what
// needs no pin (not a Git URL, or already at the commit).
func GitSourceIDs(url, commit string) (from, to string, ok bool) {
	g, remote, err := parseGit(url)
	if err != nil || g.Ref == commit {
		return "", "", false
	}
	u, err := gitutil.ParseURL(remote)
	if err != nil {
		return "", "", false
	}
	id := "git://" + u.Host + path.Join("/", u.Path)
	from, to = id, id+"#"+commit
	if g.Ref != "" || g.SubDir != "" {
		from += "#" + g.Ref
	}
	if g.SubDir != "" {
		from, to = from+":"+g.SubDir, to+":"+g.SubDir
	}
	return from, to, true
}

// HTTP returns what an HTTP resource is now, for its hash: its ETag,
// Last-Modified and Content-Length from a HEAD, or, when the server gives
// none of them, the SHA-256 of its body.
func HTTP(ctx context.Context, url string) (string, error) {
	c := &http.Client{Timeout: Timeout}
	resp, err := do(ctx, c, http.MethodHead, url)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	var v []string
	for _, h := range []string{"ETag", "Last-Modified", "Content-Length"} {
		if s := resp.Header.Get(h); s != "" {
			v = append(v, strings.ToLower(h)+"="+s)
		}
	}
	if resp.Header.Get("ETag") != "" || resp.Header.Get("Last-Modified") != "" {
		return strings.Join(v, ";"), nil
	}
	// A length alone says too little: hash the body.
	resp, err = do(ctx, c, http.MethodGet, url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), nil
}

func do(ctx context.Context, c *http.Client, method, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return resp, nil
}
