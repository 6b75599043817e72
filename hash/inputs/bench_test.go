package inputs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
)

// BenchmarkCompute measures the whole `bkcache hash` path for one service
// with `COPY . .`: ignore file, fsutil filter, walk and content digests.
// bench/hash.sh runs the full-size comparison against shell pipelines.
func BenchmarkCompute(b *testing.B) {
	for _, tc := range []struct{ files, avg int }{{2000, 64 << 10}, {20000, 1 << 10}} {
		b.Run(fmt.Sprintf("%dx%dKiB", tc.files, tc.avg>>10), func(b *testing.B) {
			dir := b.TempDir()
			rng := rand.New(rand.NewPCG(7, 7))
			buf := make([]byte, 2*tc.avg)
			var total int64
			for i := range tc.files {
				n := rng.IntN(2 * tc.avg)
				p := filepath.Join(dir, "ctx", fmt.Sprintf("p%02d/m%03d/f%05d", i%20, i%173, i))
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, buf[:n], 0o644); err != nil {
					b.Fatal(err)
				}
				total += int64(n)
			}
			os.WriteFile(filepath.Join(dir, "ctx", "Dockerfile"), []byte("FROM scratch\nCOPY . /\n"), 0o644)
			svc := &compose.Service{Name: "bench", Context: compose.Context{Kind: compose.LocalContext, Source: filepath.Join(dir, "ctx")}, Dockerfile: filepath.Join(dir, "ctx", "Dockerfile")}
			b.SetBytes(total)
			for b.Loop() {
				if _, err := ComputeAll(context.Background(), []*compose.Service{svc}, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
