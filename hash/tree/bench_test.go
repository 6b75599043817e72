package tree

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

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
	}{
		{"2000x64KiB/workers=1", 2000, 64 << 10, 1},
		{"2000x64KiB/workers=GOMAXPROCS", 2000, 64 << 10, 0},
		{"20000x1KiB/workers=GOMAXPROCS", 20000, 1 << 10, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir, total := benchTree(b, tc.n, tc.avg)
			fsys, err := fsutil.NewFS(dir)
			if err != nil {
				b.Fatal(err)
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
