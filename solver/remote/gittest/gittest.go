// Package gittest serves Git repositories for tests with a real `git
// daemon` on loopback, started and stopped by the test.
package gittest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Daemon is a running git daemon.
type Daemon struct {
	Base string // the directory it serves
	Addr string // git://127.0.0.1:PORT
}

// Start serves a new directory; a test without git fails under CI=true
// and skips otherwise, saying how to get it.
func Start(t testing.TB) *Daemon {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is not installed (apt-get install -y git)")
		}
		t.Skip("git is not installed (apt-get install -y git)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	d := &Daemon{Base: t.TempDir(), Addr: fmt.Sprintf("git://127.0.0.1:%d", port)}
	cmd := exec.Command("git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--base-path="+d.Base, d.Base)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("git daemon did not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Commit writes files into the repository name (created on first use,
// branch main) and commits them; it returns the new commit.
func (d *Daemon) Commit(t testing.TB, name string, files map[string]string) string {
	t.Helper()
	work := filepath.Join(d.Base, name+".work")
	bare := filepath.Join(d.Base, name+".git")
	git := func(dir string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(bare); err != nil {
		git(d.Base, "init", "-q", "--bare", "-b", "main", bare)
		git(d.Base, "init", "-q", "-b", "main", work)
		git(work, "remote", "add", "origin", bare)
	}
	for p, data := range files {
		full := filepath.Join(work, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(work, "add", "-A")
	git(work, "commit", "-q", "-m", "test")
	git(work, "push", "-q", "origin", "main")
	return git(work, "rev-parse", "HEAD")
}

// URL is the repository's git:// URL.
func (d *Daemon) URL(name string) string { return d.Addr + "/" + name + ".git" }
