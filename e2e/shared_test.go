package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
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
