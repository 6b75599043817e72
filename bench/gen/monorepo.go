package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// The monorepo of issue 18: services on one context (`context: .`), each
// Dockerfile copying the shared lib/ and its own services/sN/src/, beside
// files no service reads.
const (
	libFiles     = 3000
	serviceFiles = 60
	otherFiles   = 5000
)

// writeMonorepo writes dir/compose.yaml, a Dockerfile per service and the
// context's files; ignored files go under node_modules/, which the
// context's .dockerignore excludes. Contents are random, sizes small
// (1 to 16 KiB), as source files are.
func writeMonorepo(dir string, services, ignored int) error {
	rng := rand.New(rand.NewPCG(7, 42))
	buf := make([]byte, 16<<10)
	chacha := rand.NewChaCha8([32]byte{7})
	var files, total int
	write := func(p string) error {
		n := 1<<10 + rng.IntN(15<<10)
		chacha.Read(buf[:n])
		files, total = files+1, total+n
		return writeFile(filepath.Join(dir, p), buf[:n])
	}
	for i := range libFiles {
		if err := write(fmt.Sprintf("lib/m%02d/f%04d.go", i%30, i)); err != nil {
			return err
		}
	}
	for i := range otherFiles {
		if err := write(fmt.Sprintf("docs/d%02d/f%04d.md", i%50, i)); err != nil {
			return err
		}
	}
	for i := range ignored {
		// Small files in deep, narrow directories, as package managers
		// leave them.
		p := fmt.Sprintf("node_modules/p%04d/lib/f%06d.js", i%5000, i)
		if err := writeFile(filepath.Join(dir, p), []byte(p)); err != nil {
			return err
		}
	}
	var compose, union strings.Builder
	compose.WriteString("services:\n")
	union.WriteString("FROM scratch\nCOPY lib/ /lib/\n")
	for s := range services {
		name := fmt.Sprintf("s%d", s)
		for i := range serviceFiles {
			if err := write(fmt.Sprintf("services/%s/src/f%02d.go", name, i)); err != nil {
				return err
			}
		}
		df := fmt.Sprintf("FROM scratch\nCOPY lib/ /lib/\nCOPY services/%s/src/ /app/\n", name)
		if err := writeFile(filepath.Join(dir, "services", name, "Dockerfile"), []byte(df)); err != nil {
			return err
		}
		fmt.Fprintf(&compose, "  %s:\n    build:\n      context: .\n      dockerfile: services/%s/Dockerfile\n", name, name)
		fmt.Fprintf(&union, "COPY services/%s/src/ /app/%s/\n", name, name)
	}
	// One service that reads the union of all the selections: what the
	// services' hash is held against.
	if err := writeFile(filepath.Join(dir, "union", "Dockerfile"), []byte(union.String())); err != nil {
		return err
	}
	// And one that reads the whole context, which only .dockerignore
	// narrows.
	if err := writeFile(filepath.Join(dir, "whole", "Dockerfile"), []byte("FROM scratch\nCOPY . /src/\n")); err != nil {
		return err
	}
	for _, name := range []string{"union", "whole"} {
		c := fmt.Sprintf("services:\n  %s:\n    build:\n      context: .\n      dockerfile: %s/Dockerfile\n", name, name)
		if err := writeFile(filepath.Join(dir, "compose."+name+".yaml"), []byte(c)); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(dir, ".dockerignore"), []byte("node_modules\n")); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "compose.yaml"), []byte(compose.String())); err != nil {
		return err
	}
	fmt.Printf("gen: %d services, %d files (%d bytes) and %d ignored in %s\n", services, files, total, ignored, dir)
	return nil
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}
