package tree

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bkcache/bkcache/context/source"
	"github.com/tonistiigi/fsutil"
)

// benchTree writes n files averaging avg bytes into a temp dir, spread
// over subdirectories like a source tree.
func benchTree(b *testing.B, n, avg int) (string, int64) {
	b.Helper()
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	buf := make([]byte, 4*avg)
	for i := range n {
		size := rng.IntN(2 * avg)
		for j := range buf[:size] {
			buf[j] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d/s%03d/f%05d", i%16, i%97, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, buf[:size], 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	return dir, total
}

func BenchmarkHash(b *testing.B) {
	for _, tc := range []struct {
		name    string
		n, avg  int
		workers int
		fs      string // fsutil: fsutil's host FS; view: a source view; streaming: a view without batch reads
	}{
		{"2000x64KiB/workers=1", 2000, 64 << 10, 1, "fsutil"},
		{"2000x64KiB/workers=default", 2000, 64 << 10, 0, "fsutil"},
		{"20000x1KiB/workers=default", 20000, 1 << 10, 0, "fsutil"},
		{"20000x8KiB/view", 20000, 8 << 10, 0, "view"},
		{"20000x8KiB/view-streaming", 20000, 8 << 10, 0, "streaming"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir, total := benchTree(b, tc.n, tc.avg)
			var fsys FS
			switch tc.fs {
			case "fsutil":
				f, err := fsutil.NewFS(dir)
				if err != nil {
					b.Fatal(err)
				}
				fsys = f
			case "view":
				fsys = benchView(b, dir)
			case "streaming":
				fsys = streaming{benchView(b, dir)}
			}
			b.SetBytes(total)
			b.ResetTimer()
			for b.Loop() {
				if _, err := Hash(context.Background(), fsys, Options{Workers: tc.workers}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchView(b *testing.B, dir string) *source.View {
	s, err := source.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	v, err := s.FS(nil)
	if err != nil {
		b.Fatal(err)
	}
	return v
}
