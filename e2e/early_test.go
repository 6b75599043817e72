package e2e

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
)

// TestDependentStartsAtPush: app reads base through a service: context,
// and starts from base's image as soon as base's solve has pushed it,
// while base still exports its cache. The fault proxy holds the manifest
// of base's R:cache-H until app's image arrives: app's push must come
// first. Were app to wait for base's whole solve, as it did, the hold
// would end only at its limit, and the test fails.
func TestDependentStartsAtPush(t *testing.T) {
	requireSandbox(t)
	p, r, _ := faulty(t)
	appPushed := make(chan struct{})
	var once sync.Once
	p.Inject(faultproxy.Fault{Method: "PUT", Path: `/app/manifests/[0-9a-f]{64}$`, Before: func() { once.Do(func() { close(appPushed) }) }})
	var heldUntilApp atomic.Bool
	hold := p.Inject(faultproxy.Fault{Method: "PUT", Path: `/base/manifests/cache-[0-9a-f]{64}$`, Before: func() {
		select {
		case <-appPushed:
			heldUntilApp.Store(true)
		case <-time.After(30 * time.Second):
		}
	}})
	dir := project(t)
	res := mustBuild(t, dir, nil, "--push", "--repository", r, "app")
	if res["base"].Status != "built" || res["app"].Status != "built" {
		t.Fatalf("base %+v\napp %+v", res["base"], res["app"])
	}
	if hold.Hits() != 1 || !heldUntilApp.Load() {
		t.Errorf("base's cache export (held %d times) ended before app's image was pushed: app waited for base's whole solve", hold.Hits())
	}
	// app is built FROM the image base pushed; base's R:cache-H is there
	// once the run ends.
	if head(t, r+"/base:cache-"+res["base"].Hash) == "" {
		t.Errorf("base's R:cache-H missing after the run")
	}
	base, app := layers(t, res["base"].Image), layers(t, res["app"].Image)
	if len(app) <= len(base) || strings.Join(app[:len(base)], ",") != strings.Join(base, ",") {
		t.Errorf("app's layers %v do not start with base's %v", app, base)
	}
	if len(res["base"].Warnings) > 0 || len(res["app"].Warnings) > 0 {
		t.Errorf("warnings: base %q, app %q", res["base"].Warnings, res["app"].Warnings)
	}
}
