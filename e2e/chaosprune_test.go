package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// What the chaos soak runs beside each build: a branch build of an older
// state of the project, which moves ci-feature onto old images (often
// while prune runs), and a prune with the tightest rules, so that prune
// races builds, skips and floating tags being made. Afterwards every tag
// in the registry must name a complete image.

// chaosSide starts, each with probability one half, a branch build of
// old (the project some runs ago, at times the same inputs as dir) and a
// prune of the project in dir; wait returns what they printed, once both
// ended; branch says whether the branch build runs.
func chaosSide(t *testing.T, dir, old string, env []string, rng *rand.Rand) (wait func() []string, branch bool) {
	var runs [][]string
	if branch = rng.IntN(2) == 0; branch {
		runs = append(runs, []string{old, "build", "--push", "--keep-going", "--ci-tag", "ci-feature", "--registry-timeout", "5s", "--progress", "plain"})
	}
	if rng.IntN(2) == 0 {
		runs = append(runs, []string{dir, "prune", "--keep", "2", "--keep-within", "0s", "--yes", "--registry-timeout", "5s"})
	}
	outs := make([]string, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		cmd := exec.Command(sb.BkcacheBin(), r[1:]...)
		cmd.Dir = r[0]
		cmd.Env = append(append(os.Environ(), sb.Env()...), env...)
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				cmd.Process.Kill()
				<-done
				out.Write([]byte("\nHUNG for 5 minutes"))
			}
			outs[i] = strings.Join(r[1:3], " ") + ": " + out.String()
		})
	}
	return func() []string {
		wg.Wait()
		return outs
	}, branch
}

// chaosLag copies dir's inputs into old now and then, so that old is
// the project as it was some runs ago.
func chaosLag(t *testing.T, dir, old string, rng *rand.Rand) {
	if rng.IntN(4) != 0 {
		return
	}
	for _, s := range chaosServices {
		b, err := os.ReadFile(filepath.Join(dir, s+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, old, s+".txt", string(b))
	}
}

// chaosSideCheck returns the broken promises of the side runs: a hang,
// a panic, a credential in what they printed.
func chaosSideCheck(outs []string) []string {
	var v []string
	for _, o := range outs {
		switch {
		case strings.Contains(o, "HUNG for 5 minutes"):
			v = append(v, "a side run hung: "+lastLines(o, 5))
		case strings.Contains(o, "panic:"):
			v = append(v, "a side run panicked: "+lastLines(o, 20))
		case strings.Contains(o, chaosPassword):
			v = append(v, "a credential appears in a side run's output")
		}
	}
	return v
}

// chaosAllTags: every tag of every repository names a complete image,
// index or cache: each manifest it reaches and each blob they list is
// there. This is what a prune that deleted a manifest still in use
// breaks.
func chaosAllTags(t *testing.T, direct string) []string {
	var v []string
	for _, svc := range chaosServices {
		repo := direct + "/" + svc
		for _, tag := range tagsOrNone(t, repo) {
			ref, err := name.ParseReference(repo+":"+tag, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := reachable(ref, 0); err != nil {
				v = append(v, fmt.Sprintf("%s:%s does not name a complete image: %v", repo, tag, err))
			}
		}
	}
	return v
}

// reachable reads the manifest at ref, every manifest it lists and
// every blob they name (HEAD only).
func reachable(ref name.Reference, depth int) error {
	if depth > 4 {
		return fmt.Errorf("%s: indexes nest too deep", ref)
	}
	desc, err := remote.Get(ref, keychain)
	if err != nil {
		if _, gone := ref.(name.Tag); gone && strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
			return nil // deleted since it was listed
		}
		return err
	}
	repo := ref.Context()
	var blobs []v1.Descriptor
	if desc.MediaType.IsIndex() {
		var idx v1.IndexManifest
		if err := json.Unmarshal(desc.Manifest, &idx); err != nil {
			return err
		}
		for _, m := range idx.Manifests {
			if m.MediaType.IsIndex() || m.MediaType.IsImage() {
				if err := reachable(repo.Digest(m.Digest.String()), depth+1); err != nil {
					return fmt.Errorf("its %s %s: %w", m.MediaType, m.Digest, err)
				}
			} else {
				blobs = append(blobs, m)
			}
		}
	} else {
		var m v1.Manifest
		if err := json.Unmarshal(desc.Manifest, &m); err != nil {
			return err
		}
		blobs = append(m.Layers, m.Config)
	}
	for _, b := range blobs {
		l, err := remote.Layer(repo.Digest(b.Digest.String()), keychain)
		if err == nil {
			_, err = l.Size()
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
	}
	return nil
}
