package imageref

import (
	"net/url"
	"strings"
	"testing"

	// BuildKit's own library, the oracle: bkcache's code never imports it
	// (solver's TestOneImageRefLibrary), its tests hold Parse to it.
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
)

const sum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in, str, familiar, host string
	}{
		{"alpine", "docker.io/library/alpine:latest", "alpine", Hub},
		{"alpine:3.19", "docker.io/library/alpine:3.19", "alpine:3.19", Hub},
		{"alpine:latest", "docker.io/library/alpine:latest", "alpine:latest", Hub},
		{"docker.io/alpine", "docker.io/library/alpine:latest", "alpine", Hub},
		{"index.docker.io/library/alpine", "docker.io/library/alpine:latest", "alpine", Hub},
		{"bitnami/redis:7", "docker.io/bitnami/redis:7", "bitnami/redis:7", Hub},
		{"docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b", Hub},
		{"alpine@" + sum, "docker.io/library/alpine@" + sum, "alpine@" + sum, Hub},
		{"alpine:3@" + sum, "docker.io/library/alpine:3@" + sum, "alpine:3@" + sum, Hub},
		{"localhost/app", "localhost/app:latest", "localhost/app", "localhost"},
		{"localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000"},
		{"ghcr.io/org/app", "ghcr.io/org/app:latest", "ghcr.io/org/app", "ghcr.io"},
		{"127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1", "127.0.0.1:5000"},
		{"[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app", "[::1]:5000"},
		{"Registry.example.com/app", "Registry.example.com/app:latest", "Registry.example.com/app", "Registry.example.com"},
	} {
		r, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if r.String() != c.str || r.Familiar() != c.familiar || r.Host() != c.host {
			t.Errorf("Parse(%q) = %s, familiar %s, host %s; want %s, %s, %s", c.in, r, r.Familiar(), r.Host(), c.str, c.familiar, c.host)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ in, says string }{
		{"", "repository"},
		{"Alpine", "repository"},
		{"alpine:", "tag"},
		{"alpine@sha256:abc", "digest"},
		{"alpine@" + sum + "@" + sum, "digest"},
		{"alpine:3 ", "tag"},
		// BuildKit takes MyHost for a registry; go-containerregistry has
		// no way to, so Parse refuses it and says how to write it.
		{"MyHost/app", `registry host "MyHost": write it in lowercase`},
		// Capitals in what is no host at all: the repository is wrong.
		{"Not A/Ref", "repository can only contain"},
		// Past 255 characters once docker.io/library/ is filled in, as
		// BuildKit counts: go-containerregistry would not read it again.
		{strings.Repeat("0", 248), "is 256 characters long"},
	} {
		_, err := Parse(c.in)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Parse(%q) = %v; want an error saying %q", c.in, err, c.says)
		}
	}
}

// agree checks Parse against distribution/reference on one input: what
// BuildKit reads, Parse reads and spells the same; what Parse refuses,
// BuildKit refuses too, but for the hosts unreachable names.
func agree(t *testing.T, s string) {
	t.Helper()
	want, werr := reference.ParseNormalizedNamed(s)
	got, err := Parse(s)
	switch {
	case werr != nil && err != nil:
	case werr == nil && err != nil:
		if !unreachable(s) {
			t.Fatalf("Parse(%q): %v; BuildKit reads it as %s", s, err, want)
		}
	case werr == nil:
		if got.String() != reference.TagNameOnly(want).String() || got.Familiar() != reference.FamiliarString(want) || got.FamiliarName() != reference.FamiliarName(want) {
			t.Fatalf("Parse(%q) = %s, familiar %s; BuildKit: %s, familiar %s", s, got, got.Familiar(), reference.TagNameOnly(want), reference.FamiliarString(want))
		}
	default:
		looser(t, s, got, werr)
	}
	if err == nil {
		lookedUp(t, s, got)
	}
}

// lookedUp: the spelling the hash records is what the plan and the
// registry client parse again to look the image up; it must name the same
// repository and pin.
func lookedUp(t *testing.T, s string, r Ref) {
	t.Helper()
	again, err := name.ParseReference(r.String())
	if err != nil {
		t.Fatalf("Parse(%q) spells %s, which go-containerregistry refuses: %v", s, r, err)
	}
	if again.Context().Name() != r.Repository.Name() || (r.Digest != "" && again.Identifier() != r.Digest.String()) {
		t.Fatalf("Parse(%q) spells %s, which names %s", s, r, again)
	}
}

// unreachable is what Parse may refuse of what BuildKit reads: a host in
// capitals (see Parse), and a host that is no URI authority, such as the
// IPv6 literals [:0] and [0A0], which BuildKit's resolver can never reach
// either. The host is judged as BuildKit took it, not by Parse's error,
// whose wording depends on which check met it first.
func unreachable(s string) bool {
	base, _, _ := strings.Cut(s, "@")
	if hostInCapitals(base) != nil {
		return true
	}
	host, _, ok := strings.Cut(base, "/")
	if !ok {
		return false
	}
	u, err := url.Parse("//" + host)
	return err != nil || u.Host != host
}

// looser lets Parse accept what BuildKit refuses only where BuildKit then
// refuses the build itself: a name of its grammar's rejects, never a ref
// that BuildKit would read as another image.
func looser(t *testing.T, s string, got Ref, werr error) {
	t.Helper()
	for _, known := range []string{"invalid reference format", "repository name must be", "cannot specify 64-byte hexadecimal"} {
		if strings.Contains(werr.Error(), known) {
			return
		}
	}
	t.Fatalf("Parse(%q) = %s; BuildKit refuses it: %v", s, got, werr)
}

func TestAgreesWithBuildKit(t *testing.T) {
	for _, s := range seeds {
		agree(t, s)
	}
}

func FuzzAgreesWithBuildKit(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(agree)
}

var seeds = []string{
	"alpine", "alpine:3.19", "docker.io/alpine", "index.docker.io/alpine", "docker.io/library/alpine:edge",
	"bitnami/redis", "a/b/c/d:e", "localhost/x", "localhost:5000/x:y", "LOCALHOST/x", "MyHost/app",
	"ghcr.io/o/r@" + sum, "ghcr.io/o/r:t@" + sum, "x@sha512:abc", "x@sha256:" + strings.Repeat("0", 64),
	strings.Repeat("a", 64), strings.Repeat("0", 250), "[0A0]/0", "a..b", "a__b", "-a", "a-", "a:.t", "a:-t", "a:" + strings.Repeat("t", 129),
	"[::1]/x", "[::1]:5000/x", "127.0.0.1/x", "host:port/x", "h.io:1/x:", "x:y:z", "x/Y", "UPPER.io/x",
	"alpine@", "@" + sum, "docker.io/Alpine", "docker.io:443/x", "a.b/c.d/e_f/g-h:I.J",
}
