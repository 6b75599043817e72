package tree

import (
	"github.com/zeebo/blake3"
)

// newHasher returns an unkeyed BLAKE3-256 hasher: zeebo/blake3's, which
// hashes in the calling goroutine (every core is already hashing a file
// of its own) and was the fastest measured here at every file size
// (docs/testing.md, BenchmarkBlake3).
func newHasher() *blake3.Hasher { return blake3.New() }
