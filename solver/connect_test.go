package solver

import (
	"errors"
	"strings"
	"testing"
)

func TestDialError(t *testing.T) {
	// gRPC's text around docker's commandconn error, as BuildKit v0.33.1
	// returned it for a refused ssh login and a missing container.
	const ssh = `failed to call info: Unavailable: connection error: desc = "error reading server preface: command [ssh -l nobody -p 42375 -- 127.0.0.1 buildctl --addr unix:///tmp/b/buildkitd.sock dial-stdio] has exited with exit status 255, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: stderr=nobody@127.0.0.1: Permission denied (publickey).\r\n"`
	const container = `failed to call info: Unavailable: connection error: desc = "error reading server preface: command [docker exec -i gone buildctl dial-stdio] has exited with exit status 1, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: stderr=Error: No such container: gone\n"`
	for _, tc := range []struct {
		name, addr, err string
		want            []string
		not             []string
	}{
		{"ssh refused", "ssh://nobody@127.0.0.1:42375/tmp/b/buildkitd.sock", ssh,
			[]string{"ssh://nobody@127.0.0.1:42375/tmp/b/buildkitd.sock", "`ssh -l nobody -p 42375 -- 127.0.0.1 buildctl", "exit status 255: nobody@127.0.0.1: Permission denied (publickey).\n", "remote PATH"},
			[]string{"Docker 18.09", `\r`, "sudo buildkitd"}},
		{"container gone", "docker-container://gone", container,
			[]string{"docker-container://gone", "`docker exec -i gone buildctl dial-stdio` exited with exit status 1: Error: No such container: gone\n", "docker ps"},
			[]string{"Docker 18.09", `\n"`}},
		{"unix socket", "unix:///run/buildkit/buildkitd.sock", "connection refused",
			[]string{"unix:///run/buildkit/buildkitd.sock: connection refused", "sudo buildkitd", "BUILDKIT_HOST"}, nil},
		{"helper without its failure text", "ssh://host", "context deadline exceeded",
			[]string{"ssh://host: context deadline exceeded"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dialError(tc.addr, errors.New(tc.err)).Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("unwanted %q in:\n%s", n, got)
				}
			}
		})
	}
}
