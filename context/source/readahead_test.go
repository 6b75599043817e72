package source

import (
	"container/heap"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestWalkOrder: the read-ahead heap hands out directories in the order
// filepath.WalkDir (lexical, depth first) reaches them, with names that
// sort below the separator ("a-b", "a.b", "a b") next to a directory "a".
func TestWalkOrder(t *testing.T) {
	files := map[string]string{}
	for _, d := range []string{"a/b", "a/b/c", "a-b", "a.b/x", "a b", "a/z", "ab", "b", "a/b-c", "a/b/c/d"} {
		files[d+"/f"] = "x"
	}
	root := sourcetest.Tree(t, files)
	var want []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if d.IsDir() && p != root {
			rel, _ := filepath.Rel(root, p)
			want = append(want, rel)
		}
		return nil
	})
	for i := range 20 {
		shuffled := slices.Clone(want)
		rand.New(rand.NewPCG(uint64(i), 1)).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		var h walkOrder
		for _, p := range shuffled {
			heap.Push(&h, p)
		}
		var got []string
		for h.Len() > 0 {
			got = append(got, heap.Pop(&h).(string))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("heap order\n%q\nwalk order\n%q", got, want)
		}
	}
}

// TestEachDirectoryReadOnce: however the read-ahead's workers and the
// walk race, no directory is read twice in one walk (a directory the walk
// read itself stays in the heap until a worker pops it, and must then be
// dropped, not read again).
func TestEachDirectoryReadOnce(t *testing.T) {
	files := map[string]string{}
	for i := range 40 {
		for j := range 5 {
			files[filepath.Join(fmt.Sprintf("d%02d", i), fmt.Sprintf("s%d", j), "f")] = "x"
		}
	}
	root := sourcetest.Tree(t, files)
	for range 20 {
		d := newDirFS(root, false, nil)
		var mu sync.Mutex
		reads := map[string]int{}
		ra := newReadAhead(func(rel string) ([]*entry, error) {
			mu.Lock()
			reads[rel]++
			mu.Unlock()
			return d.readDir(rel)
		}, nil, 4)
		if err := d.walkDir(context.Background(), ra, ".", nil, func(string, fs.DirEntry, error) error { return nil }); err != nil {
			t.Fatal(err)
		}
		ra.close()
		mu.Lock()
		for rel, n := range reads {
			if n > 1 {
				t.Fatalf("%s read %d times in one walk", rel, n)
			}
		}
		if len(reads) != 1+40+40*5 {
			t.Fatalf("%d directories read, want %d", len(reads), 1+40+40*5)
		}
		mu.Unlock()
	}
}
