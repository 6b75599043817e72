package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/e2e/sandbox"
)

// TestSSH: bkcache reaches buildkitd through BuildKit's ssh:// connection
// helper, over a real OpenSSH server, and builds; an ssh:// address whose
// server refuses is an error naming it.
func TestSSH(t *testing.T) {
	requireSandbox(t)
	if err := sandbox.CheckSSH(); err != nil {
		sourcetest.Unavailable(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ssh, err := sb.StartSSH(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + ssh.PathDir + ":" + os.Getenv("PATH")}
	dir, r := project(t), repo(t)
	res, out := build(t, dir, env, "--addr", ssh.Addr, "--push", "--repository", r, "web")
	if out.code != 0 || res["web"].Status != "built" {
		t.Fatalf("build over %s (exit %d): %+v\n%s", ssh.Addr, out.code, res["web"], out.stderr)
	}
	v := bkcache(t, dir, append(env, "BUILDKIT_HOST="+ssh.Addr), "version")
	if v.code != 0 || !strings.Contains(v.stdout, sandbox.BuildkitVersion) {
		t.Errorf("version through ssh:// must show the daemon's (exit %d):\n%s%s", v.code, v.stdout, v.stderr)
	}

	refused := strings.Replace(ssh.Addr, "ssh://root@", "ssh://nobody@", 1)
	bad := bkcache(t, dir, env, "build", "--addr", refused, "--repository", r, "web")
	if bad.code == 0 || !containsAll(bad.stderr, refused, "Permission denied (publickey)", "remote PATH") {
		t.Errorf("refused ssh login must name the address and say ssh's reason: exit %d\n%s", bad.code, bad.stderr)
	}
}
