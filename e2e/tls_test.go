package e2e

import (
	"strings"
	"testing"
)

// TestTLS: bkcache reaches buildkitd over tcp:// with TLS and a client
// certificate; without the certificate the daemon refuses, and the error
// names the address.
func TestTLS(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	tls := sb.TLS
	res, out := build(t, dir, nil, "--addr", sb.BuildkitTCP, "--tlscacert", tls.CACert, "--tlscert", tls.ClientCert, "--tlskey", tls.ClientKey,
		"--push", "--repository", r, "web")
	if out.code != 0 || res["web"].Status != "built" {
		t.Fatalf("build over TLS (exit %d): %+v\n%s", out.code, res["web"], out.stderr)
	}

	noCert := bkcache(t, dir, nil, "build", "--addr", sb.BuildkitTCP, "--tlscacert", tls.CACert, "--repository", r, "web")
	if noCert.code == 0 || !strings.Contains(noCert.stderr, "cannot reach buildkitd at "+sb.BuildkitTCP) {
		t.Errorf("without a client certificate: exit %d\n%s", noCert.code, noCert.stderr)
	}
	noCA := bkcache(t, dir, nil, "build", "--addr", sb.BuildkitTCP, "--repository", r, "web")
	if noCA.code == 0 {
		t.Errorf("plain tcp to a TLS daemon succeeded")
	}
	half := bkcache(t, dir, nil, "build", "--addr", sb.BuildkitTCP, "--tlscert", tls.ClientCert, "--repository", r, "web")
	if half.code == 0 || !strings.Contains(half.stderr, "--tlskey") {
		t.Errorf("--tlscert without --tlskey: exit %d\n%s", half.code, half.stderr)
	}
}
