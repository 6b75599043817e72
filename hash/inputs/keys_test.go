package inputs

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/compose-spec/compose-go/v2/types"
)

// keyCase changes one compose build key and says whether the service's
// hash must move. from and to are build: keys over keysBase, as YAML;
// service, service-level lines of the "to" side.
type keyCase struct {
	field    string // compose-go's BuildConfig field, or servicePlatform
	from, to map[string]string
	service  string
	moves    bool
	why      string // for a change that must not move the hash: why it cannot change the image
}

// servicePlatform is the service-level platform: key, which builds for
// that platform when build.platforms is unset.
const servicePlatform = "ServiceConfig.Platform"

// keyCases decide every compose build key: each field of compose-go's
// BuildConfig has a case that moves the hash (it is hashed) or cases
// that leave it, with the reason (it cannot change the image).
var keyCases = []keyCase{
	{field: "Context", to: map[string]string{"context": "./other"}, moves: true},
	{field: "Dockerfile", to: map[string]string{"dockerfile": "Other.Dockerfile"}, moves: true},
	{field: "DockerfileInline", to: map[string]string{"dockerfile_inline": "'FROM scratch'"}, moves: true},
	{field: "Args", from: map[string]string{"args": "{A: '1'}"}, to: map[string]string{"args": "{A: '2'}"}, moves: true},
	{field: "Provenance", to: map[string]string{"provenance": "mode=max"}, moves: true},
	{field: "SBOM", to: map[string]string{"sbom": "'true'"}, moves: true},
	{field: "SSH", to: map[string]string{"ssh": "[default]"}, moves: true},
	{field: "Labels", to: map[string]string{"labels": "{a: b}"}, moves: true},
	{field: "AdditionalContexts", to: map[string]string{"additional_contexts": "{img: 'docker-image://busybox:1'}"}, moves: true},
	{field: "Target", to: map[string]string{"target": "base"}, moves: true},
	{field: "Secrets", to: map[string]string{"secrets": "[s]"}, moves: true},
	{field: "Platforms", to: map[string]string{"platforms": "[linux/arm64]"}, moves: true},
	{field: servicePlatform, service: "platform: linux/arm64", moves: true},
	// The keys BuildKit puts into every RUN step's exec op.
	{field: "Network", to: map[string]string{"network": "none"}, moves: true},
	{field: "Network", to: map[string]string{"network": "default"}, why: "default is BuildKit's own network, as no key at all"},
	{field: "ExtraHosts", to: map[string]string{"extra_hosts": "[db=10.0.0.1]"}, moves: true},
	{field: "ExtraHosts", from: map[string]string{"extra_hosts": "[db=10.0.0.1]"}, to: map[string]string{"extra_hosts": "[db=10.0.0.1, cache=10.0.0.2]"}, moves: true},
	{field: "ExtraHosts", from: map[string]string{"extra_hosts": "[db=10.0.0.1]"}, to: map[string]string{"extra_hosts": "[DB=10.0.0.2]"},
		why: "BuildKit lowercases the names and keys a step on them, not on the addresses (ExecOp.CacheMap)"},
	{field: "ShmSize", to: map[string]string{"shm_size": "64m"}, moves: true},
	{field: "Ulimits", to: map[string]string{"ulimits": "{nofile: 1024}"}, moves: true},
	{field: "Ulimits", from: map[string]string{"ulimits": "{nofile: 1024}"}, to: map[string]string{"ulimits": "{nofile: {soft: 1024, hard: 2048}}"}, moves: true},
	{field: "Ulimits", from: map[string]string{"ulimits": "{nofile: 1024}"}, to: map[string]string{"ulimits": "{nofile: {soft: 1024, hard: 1024}}"}, why: "one value sets both limits"},
	// The keys that cannot change the image.
	{field: "Entitlements", to: map[string]string{"entitlements": "[network.host]"}, why: "a permission: a step that needs it fails without it, and none is keyed on it"},
	{field: "Privileged", to: map[string]string{"privileged": "true"}, why: "the security.insecure permission, as entitlements"},
	{field: "CacheFrom", to: map[string]string{"cache_from": "[type=registry,ref=reg.local/c]"}, why: "where cached steps may come from, never what a step makes"},
	{field: "CacheTo", to: map[string]string{"cache_to": "[type=inline]"}, why: "where the cache goes, never what a step makes"},
	{field: "NoCache", to: map[string]string{"no_cache": "true"}, why: "runs the steps again on the same inputs, which make the same image"},
	{field: "NoCacheFilter", to: map[string]string{"no_cache_filter": "[base]"}, why: "as no_cache, for some stages"},
	{field: "Pull", to: map[string]string{"pull": "true"}, why: "the images read are hashed by what they resolve to (or as written), pulled again or not"},
	{field: "Isolation", to: map[string]string{"isolation": "hyperv"}, why: "Windows containers only; BuildKit on Linux has no such setting"},
	{field: "Tags", to: map[string]string{"tags": "[reg.local/x:1]"}, why: "more names for the image, never its content"},
	{field: "Extensions", to: map[string]string{"x-other-tool": "1"}, why: "x- keys are other tools'; BuildKit never sees them"},
}

// keysProject is the project each case changes: one service whose
// Dockerfile has two stages and a RUN step.
var keysProject = map[string]string{
	"app/Dockerfile":       "FROM scratch AS base\nCOPY a.txt /\nFROM base AS final\nRUN true\n",
	"app/Other.Dockerfile": "FROM scratch\nCOPY a.txt /a\n",
	"app/a.txt":            "a",
	"other/Dockerfile":     "FROM scratch AS base\nCOPY a.txt /\nFROM base AS final\nRUN true\n",
	"other/a.txt":          "other",
	"s.txt":                "secret",
}

var keysBase = map[string]string{"context": "./app"}

func keysCompose(build map[string]string, service string) string {
	var b strings.Builder
	b.WriteString("services:\n  app:\n")
	if service != "" {
		b.WriteString("    " + service + "\n")
	}
	b.WriteString("    build:\n")
	for _, k := range slices.Sorted(maps.Keys(build)) {
		fmt.Fprintf(&b, "      %s: %s\n", k, build[k])
	}
	b.WriteString("secrets:\n  s: {file: ./s.txt}\n")
	return b.String()
}

func keysHash(t *testing.T, build map[string]string, service string) string {
	t.Helper()
	files := maps.Clone(keysProject)
	files["compose.yaml"] = keysCompose(build, service)
	p, err := loadProject(sourcetest.Tree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	all, err := ComputeAll(context.Background(), []*compose.Service{p.Services["app"]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return all[0].Hash.String()
}

// TestEveryBuildKeyDecided: every field of compose-go's BuildConfig is
// decided, hashed or not, with a case that shows it. A compose-go
// upgrade that adds a key fails here until someone decides it.
func TestEveryBuildKeyDecided(t *testing.T) {
	hashed, kept := map[string]bool{}, map[string]bool{}
	for _, c := range keyCases {
		if c.moves {
			hashed[c.field] = true
		} else {
			kept[c.field] = true
		}
	}
	fields := []string{servicePlatform}
	if _, ok := reflect.TypeFor[types.ServiceConfig]().FieldByName("Platform"); !ok {
		t.Errorf("compose-go's ServiceConfig has no Platform field any more")
	}
	bt := reflect.TypeFor[types.BuildConfig]()
	for i := range bt.NumField() {
		fields = append(fields, bt.Field(i).Name)
	}
	for _, f := range fields {
		if !hashed[f] && !kept[f] {
			t.Errorf("compose build key %s is neither hashed nor listed as unable to change the image: decide it in keyCases", f)
		}
	}
	for f := range maps.Keys(hashed) {
		if !slices.Contains(fields, f) {
			t.Errorf("keyCases names %s, which compose-go's BuildConfig no longer has", f)
		}
	}
	for f := range maps.Keys(kept) {
		if !slices.Contains(fields, f) {
			t.Errorf("keyCases names %s, which compose-go's BuildConfig no longer has", f)
		}
	}
}

// TestBuildKeysMoveTheHash runs each case: a hashed key's change moves
// the hash, any other leaves it.
func TestBuildKeysMoveTheHash(t *testing.T) {
	for _, c := range keyCases {
		t.Run(c.field+"/"+strings.Join(slices.Sorted(maps.Values(c.to)), ","), func(t *testing.T) {
			if !c.moves && c.why == "" {
				t.Fatal("a case that leaves the hash must say why")
			}
			from, to := maps.Clone(keysBase), maps.Clone(keysBase)
			maps.Copy(from, c.from)
			maps.Copy(to, c.from)
			maps.Copy(to, c.to)
			before, after := keysHash(t, from, ""), keysHash(t, to, c.service)
			if moved := before != after; moved != c.moves {
				t.Errorf("%v -> %v %s: hash moved %v, want %v", c.from, c.to, c.service, moved, c.moves)
			}
		})
	}
}
