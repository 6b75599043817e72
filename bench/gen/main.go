// Command gen writes deterministic projects for benchmarks. By default it
// writes one build context: N files totalling about SIZE bytes, spread
// over nested directories, with sizes skewed like a source tree (many
// small files, a few large ones). With -monorepo it writes a compose
// project of many services on one shared context (see monorepo.go).
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("dir", "", "directory to write (created)")
	files := flag.Int("files", 20000, "number of files")
	size := flag.Int64("bytes", 1300<<20, "total bytes, approximately")
	seed := flag.Uint64("seed", 1, "random seed")
	mono := flag.Int("monorepo", 0, "write a compose project of this many services on one context")
	ignored := flag.Int("ignored", 0, "with -monorepo: files under node_modules/, which .dockerignore excludes")
	flag.Parse()
	if *dir == "" {
		log.Fatal("gen: -dir is required")
	}
	if *mono > 0 {
		if err := writeMonorepo(*dir, *mono, *ignored); err != nil {
			log.Fatal(err)
		}
		return
	}
	rng := rand.New(rand.NewPCG(*seed, 42))
	// Sizes follow a Pareto-like spread, scaled to the requested total.
	weights := make([]float64, *files)
	var sum float64
	for i := range weights {
		weights[i] = 1 / (rng.Float64()*0.999 + 0.001)
		sum += weights[i]
	}
	buf := make([]byte, 1<<20)
	chacha := rand.NewChaCha8([32]byte{byte(*seed)})
	var total int64
	for i := range *files {
		n := int64(weights[i] / sum * float64(*size))
		p := filepath.Join(*dir, fmt.Sprintf("pkg%02d/mod%03d/file%05d.dat", i%20, i%173, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			log.Fatal(err)
		}
		for left := n; left > 0; {
			k := min(left, int64(len(buf)))
			chacha.Read(buf[:k])
			if _, err := f.Write(buf[:k]); err != nil {
				log.Fatal(err)
			}
			left -= k
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
		total += n
	}
	fmt.Printf("gen: %d files, %d bytes in %s\n", *files, total, *dir)
}
