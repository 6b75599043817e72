package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestPruneKeepsInUse is prune's two data-loss findings on distribution,
// which deletes every tag of a manifest deleted by digest, through the
// real binary. An old hash image wrapped unchanged in the index that ci
// names must stay (or ci names an index with a missing child); an old
// image that a branch build tags ci-feature after prune listed the tags
// (at the exact request that reads its referrers) must stay with its
// tag. An old image nothing uses goes.
func TestPruneKeepsInUse(t *testing.T) {
	requireSandbox(t)
	p := proxyTo(t, sb.RegistryAddr)
	path := strings.TrimPrefix(repo(t), sb.RegistryAddr+"/")
	direct, _ := name.NewRepository(sb.RegistryAddr+"/"+path+"/app", name.Insecure)
	reg := registry.New(registry.Options{})
	ctx := context.Background()
	now := time.Now()
	hash := func(i int) string { return fmt.Sprintf("%064x", i) }
	push := func(tag string, age time.Duration) v1.Hash {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(direct.Tag(tag), img, keychain); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		attachAt(t, reg, direct, d, now.Add(-age))
		return d
	}
	x := push(hash(1), 48*time.Hour)
	gone := push(hash(4), 50*time.Hour)
	branch := push(hash(5), 49*time.Hour)
	push(hash(3), 46*time.Hour) // the newest: kept by --keep 1
	xImg, err := remote.Image(direct.Digest(x.String()), keychain)
	if err != nil {
		t.Fatal(err)
	}
	idx := indexOf(t, xImg)
	if err := remote.WriteIndex(direct.Tag(hash(2)), idx, keychain); err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(direct.Tag("ci"), idx, keychain); err != nil {
		t.Fatal(err)
	}
	id, _ := idx.Digest()
	attachAt(t, reg, direct, id, now.Add(-47*time.Hour))
	hook := p.Inject(faultproxy.Fault{Method: "GET", Times: 1,
		Path: "/referrers/" + branch.String() + "$|/manifests/sha256-" + branch.Hex + "$",
		Before: func() {
			img, err := remote.Image(direct.Digest(branch.String()), keychain)
			if err == nil {
				err = remote.Write(direct.Tag("ci-feature"), img, keychain)
			}
			if err != nil {
				t.Error(err)
			}
		}})
	dir := sourcetest.Tree(t, map[string]string{"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "FROM scratch\n"})
	res := bkcache(t, dir, nil, "prune", "--repository", p.Addr+"/"+path, "--keep", "1", "--keep-within", "0s", "--yes", "--format", "json")
	if res.code != 0 || hook.Hits() != 1 {
		t.Fatalf("prune: exit %d, hook hit %d times:\n%s%s", res.code, hook.Hits(), res.stdout, res.stderr)
	}
	present := func(d v1.Hash) bool {
		_, found, err := reg.Head(ctx, direct.Digest(d.String()))
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	if !present(x) {
		t.Errorf("the image the kept index (ci) lists was deleted:\n%s", res.stdout)
	}
	if err := reachable(direct.Tag("ci"), 0); err != nil {
		t.Errorf("ci does not name a complete image: %v", err)
	}
	if !present(branch) || head(t, direct.Tag("ci-feature").String()) != branch.String() {
		t.Errorf("the image tagged ci-feature during the prune was deleted:\n%s", res.stdout)
	}
	if present(gone) {
		t.Errorf("the old image nothing uses stayed:\n%s", res.stdout)
	}
}

func attachAt(t *testing.T, reg *registry.Registry, repo name.Repository, d v1.Hash, at time.Time) {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"schemaVersion": 1, "services": []any{}})
	if err := reg.Attach(context.Background(), repo.Digest(d.String()), record.ArtifactType, doc, at); err != nil {
		t.Fatal(err)
	}
}

// indexOf wraps img, unchanged, in an OCI index, as a build that only
// adds attestations does.
func indexOf(t *testing.T, img v1.Image) v1.ImageIndex {
	t.Helper()
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
	}), types.OCIImageIndex)
}
