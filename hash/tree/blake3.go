package tree

import (
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// batch is what one SIMD call of guts compresses: 16 chunks with AVX-512,
// two calls of 8 with AVX2.
const batch = guts.MaxSIMD * guts.ChunkSize

// b3 is an unkeyed BLAKE3-256 hasher over lukechampine.com/blake3's
// SIMD kernels. That package's own Hasher starts goroutines on every
// large Write, which costs more than it gains when every core is already
// hashing a file of its own; this one compresses whole 16 KiB batches in
// the calling goroutine and keeps their chaining values on a stack, as the
// BLAKE3 paper's incremental hasher does with single chunks. The digests
// are BLAKE3's (checked against another implementation in the tests).
type b3 struct {
	stack  [64 - 4][8]uint32 // subtree roots of 2^i batches, where n has bit i set
	n      uint64            // batches compressed
	buf    [batch]byte       // the last, possibly partial batch: never empty at Sum unless the input is
	buflen int
}

func (h *b3) Reset() { h.n, h.buflen = 0, 0 }

// Write never fails. A batch is compressed only once more input follows
// it, because the root of the tree must be finalised differently.
func (h *b3) Write(p []byte) (int, error) {
	l := len(p)
	for len(p) > 0 {
		if h.buflen == batch {
			h.push(&h.buf)
			h.buflen = 0
		}
		// Whole batches straight from p, without a copy.
		for h.buflen == 0 && len(p) > batch {
			h.push((*[batch]byte)(p))
			p = p[batch:]
		}
		k := copy(h.buf[h.buflen:], p)
		h.buflen += k
		p = p[k:]
	}
	return l, nil
}

func (h *b3) push(b *[batch]byte) {
	cv := guts.ChainingValue(guts.CompressBuffer(b, batch, &guts.IV, h.n*guts.MaxSIMD, 0))
	i := 0
	for ; h.n&(1<<i) != 0; i++ {
		cv = guts.ChainingValue(guts.ParentNode(h.stack[i], cv, &guts.IV, 0))
	}
	h.stack[i] = cv
	h.n++
}

// Sum appends the 32-byte digest of what was written to b.
func (h *b3) Sum(b []byte) []byte {
	n := guts.CompressBuffer(&h.buf, h.buflen, &guts.IV, h.n*guts.MaxSIMD, 0)
	for i := range bits.Len64(h.n) {
		if h.n&(1<<i) != 0 {
			n = guts.ParentNode(h.stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	return append(b, out[:32]...)
}
