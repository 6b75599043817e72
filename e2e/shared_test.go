package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/e2e/sandbox"
)

// TestSharedRepository: two services with different builds pushing to
// one repository (told apart by tag, as opentelemetry-demo does) keep
// floating tags and caches of their own across runs, and explain of
// each compares with its own last build.
func TestSharedRepository(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n" +
			"  ad:\n    image: " + r + "/demo:latest-ad\n    build: ./ad\n" +
			"  cart:\n    image: " + r + "/demo:latest-cart\n    build: ./cart\n",
		"ad/Dockerfile":   "FROM busybox\nRUN echo ad > /prep\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\n",
		"ad/a.txt":        "ad one",
		"cart/Dockerfile": "FROM busybox\nRUN echo cart > /prep\nCOPY c.txt /c.txt\nRUN cat /c.txt > /copy\n",
		"cart/c.txt":      "cart one",
	})
	d := newDaemon(t)
	first := mustBuild(t, dir, d.env(), "--push")
	for _, svc := range []string{"ad", "cart"} {
		if got := head(t, r+"/demo:ci-"+svc); got != first[svc].Digest || first[svc].Floating != r+"/demo:ci-"+svc {
			t.Errorf("%s: ci-%s at %s, floating %q; want its own at %s", svc, svc, got, first[svc].Floating, first[svc].Digest)
		}
	}
	if head(t, r+"/demo:ci") != "" {
		t.Error("a shared demo:ci was moved")
	}
	writeFile(t, dir, "ad/a.txt", "ad two")
	ex := bkcache(t, dir, nil, "explain", "ad")
	if ex.code != 0 || !strings.Contains(ex.stdout, "ad/a.txt") && !strings.Contains(ex.stdout, "a.txt") || strings.Contains(ex.stdout, "c.txt") {
		t.Errorf("explain ad must compare with ad's own build:\n%s%s", ex.stdout, ex.stderr)
	}
	d.prune(t)
	res := mustBuild(t, dir, d.env(), "--push")
	ad := res["ad"]
	if ad.Status != "built" || !slices.Contains(ad.CacheImports, "registry:"+r+"/demo:cache-ci-ad") || slices.Contains(ad.CacheImports, "registry:"+r+"/demo:cache-ci-cart") {
		t.Errorf("ad's rebuild: %s, imports %q; want its own cache-ci-ad", ad.Status, ad.CacheImports)
	}
	if ad.CachedSteps == 0 {
		t.Errorf("ad's rebuild on a pruned daemon took nothing from its own cache")
	}
	if res["cart"].Status != "skipped" || head(t, r+"/demo:ci-cart") != first["cart"].Digest {
		t.Errorf("cart: %s, ci-cart moved", res["cart"].Status)
	}
}

// TestIdenticalServices: three services that make the same image (as
// sentry's self-hosted file has nineteen) are built once; the others
// report that build.
func TestIdenticalServices(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	var compose strings.Builder
	compose.WriteString("services:\n")
	for _, s := range []string{"web", "worker", "cron"} {
		compose.WriteString("  " + s + ":\n    image: " + r + "/sentry\n    build: .\n")
	}
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": compose.String(),
		"Dockerfile":   "FROM busybox\nRUN echo " + r + " > /built\n",
	})
	res := mustBuild(t, dir, nil, "--push")
	solved := 0
	for _, s := range []string{"cron", "web", "worker"} {
		if res[s].Status != "built" || res[s].Digest != res["cron"].Digest {
			t.Errorf("%s: %+v", s, res[s])
		}
		if res[s].TotalSteps > 0 {
			solved++
		}
	}
	if solved != 1 || res["web"].SameAs != "cron" || res["worker"].SameAs != "cron" {
		t.Errorf("%d solves, web same as %q, worker same as %q; want one, by cron", solved, res["web"].SameAs, res["worker"].SameAs)
	}
}

// TestSharedContextOnce: services that read one directory (a monorepo's
// lib/, as part of their build context or as an additional context)
// send it to buildkitd once per run, not once per service, and a rebuild
// after one file of it changed sends little more than that file. Every
// image still holds exactly the files of its own selection, without what
// .dockerignore leaves out.
func TestSharedContextOnce(t *testing.T) {
	requireSandbox(t)
	for _, tc := range []struct {
		name string
		// build is service s's compose build section, its Dockerfile's
		// path and text; ignore the .dockerignore that leaves lib's
		// secret out.
		build           func(s string) (section, dockerfile, text string)
		ignore, ignore1 string
	}{
		{"a path of the build context", func(s string) (string, string, string) {
			return "{context: ., dockerfile: services/" + s + "/Dockerfile}", "services/" + s + "/Dockerfile",
				"FROM scratch\nCOPY lib/ /lib/\nCOPY services/" + s + "/src/ /app/\n"
		}, ".dockerignore", "lib/secret.env\n"},
		{"an additional context", func(s string) (string, string, string) {
			return "{context: ./services/" + s + ", additional_contexts: {lib: ./lib}}", "services/" + s + "/Dockerfile",
				"FROM scratch\nCOPY --from=lib . /lib/\nCOPY src/ /app/\n"
		}, "lib/.dockerignore", "secret.env\n.dockerignore\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sharedOnce(t, tc.build, map[string]string{tc.ignore: tc.ignore1})
		})
	}
}

func sharedOnce(t *testing.T, build func(s string) (string, string, string), files map[string]string) {
	r := repo(t)
	const services, libFiles, fileSize = 6, 40, 50 << 10
	files["lib/secret.env"] = "TOKEN=not-for-images"
	files["unrelated/big.md"] = noise("unrelated", 2<<20)
	var compose strings.Builder
	compose.WriteString("services:\n")
	for i := range libFiles {
		files[fmt.Sprintf("lib/f%02d.go", i)] = noise(fmt.Sprint("lib", i), fileSize)
	}
	for i := range services {
		s := fmt.Sprintf("s%d", i)
		section, df, text := build(s)
		fmt.Fprintf(&compose, "  %s:\n    image: %s/%s\n    build: %s\n", s, r, s, section)
		files[df] = text
		files["services/"+s+"/src/own.txt"] = s
		files["services/"+s+"/src/data.bin"] = noise(s, fileSize)
	}
	files["compose.yaml"] = compose.String()
	dir := sourcetest.Tree(t, files)
	d := newDaemon(t)
	lib := int64(libFiles * fileSize)

	sent := func() int64 {
		t.Helper()
		out := bkcache(t, dir, d.env(), "build", "--push", "--progress", "rawjson")
		if out.code != 0 {
			t.Fatalf("bkcache build (exit %d):\n%s", out.code, out.stderr)
		}
		return sandbox.ContextBytes([]byte(out.stderr))
	}
	first := sent()
	t.Logf("context sent by the first build: %d bytes (lib/ %d)", first, lib)
	own := int64(services * (fileSize + 2))
	if first < lib || first > lib+own+lib/4 {
		t.Errorf("the first build sent %d bytes of context; lib/ is %d and the services' own files %d: lib/ must be sent once", first, lib, own)
	}
	for i := range services {
		s := fmt.Sprintf("s%d", i)
		want := map[string]string{"app/own.txt": s, "app/data.bin": strings.TrimSpace(files["services/"+s+"/src/data.bin"])}
		for f := range libFiles {
			want[fmt.Sprintf("lib/f%02d.go", f)] = strings.TrimSpace(files[fmt.Sprintf("lib/f%02d.go", f)])
		}
		if got := regularFiles(t, remoteImage(t, r+"/"+s+":ci")); !maps.Equal(got, want) {
			t.Errorf("%s's image holds %d files (%q...), want the %d of its selection", s, len(got), slices.Sorted(maps.Keys(got))[:min(3, len(got))], len(want))
		}
	}

	writeFile(t, dir, "lib/f00.go", files["lib/f00.go"]+"// changed\n")
	again := sent()
	t.Logf("context sent by the rebuild: %d bytes", again)
	if again > fileSize+fileSize/2 {
		t.Errorf("the rebuild after one lib/ file changed sent %d bytes of context; the file is %d", again, fileSize)
	}
}

// noise is n bytes of text that does not compress, made from seed.
func noise(seed string, n int) string {
	var b strings.Builder
	for h := sha256.Sum256([]byte(seed)); b.Len() < n; h = sha256.Sum256(h[:]) {
		b.WriteString(hex.EncodeToString(h[:]))
	}
	return b.String()[:n]
}
