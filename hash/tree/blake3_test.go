package tree

import (
	"bytes"
	"math/rand/v2"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/zeebo/blake3"
	luke "lukechampine.com/blake3"
)

// batch is what one SIMD call compresses at most (16 chunks, with
// AVX-512): the lengths around its multiples are where a tree hasher's
// bookkeeping can go wrong.
const batch = 16 * 1024

// TestBlake3 checks the hasher against lukechampine.com/blake3, an
// independent implementation, at every length around the chunk, batch
// and tree boundaries, written whole and in uneven pieces.
func TestBlake3(t *testing.T) {
	data := make([]byte, 9*batch+3*1024+7)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var lengths []int
	for _, base := range []int{0, 1024, 2048, batch, 2 * batch, 3 * batch, 4 * batch, 8 * batch, 9 * batch} {
		for d := -65; d <= 65; d++ {
			if n := base + d; n >= 0 && n <= len(data) {
				lengths = append(lengths, n)
			}
		}
	}
	for n := 0; n <= len(data); n += 997 {
		lengths = append(lengths, n)
	}
	h := newHasher()
	for _, n := range lengths {
		want := luke.Sum256(data[:n])
		h.Reset()
		h.Write(data[:n])
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("len %d written whole: %x, want %x", n, got, want)
		}
		h.Reset()
		for p := data[:n]; len(p) > 0; {
			k := min(len(p), 1+rng.IntN(3*batch))
			h.Write(p[:k])
			p = p[k:]
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("len %d written in pieces: %x, want %x", n, got, want)
		}
	}
}

// FuzzBlake3: any input, written in pieces of any one size, hashes as
// lukechampine.com/blake3 hashes it whole.
func FuzzBlake3(f *testing.F) {
	f.Add([]byte("abc"), uint16(1))
	for _, n := range []int{1024, 1025, batch, batch + 1, 2*batch + 1024} {
		f.Add(make([]byte, n), uint16(n/3))
	}
	f.Fuzz(func(t *testing.T, data []byte, piece uint16) {
		h := newHasher()
		for p := data; len(p) > 0; {
			k := min(len(p), 1+int(piece))
			h.Write(p[:k])
			p = p[k:]
		}
		want := luke.Sum256(data)
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("len %d pieces of %d: %x, want %x", len(data), piece+1, got, want)
		}
	})
}

// BenchmarkBlake3 measures the hasher bkcache uses against
// lukechampine.com/blake3's, the other candidate, in the same run.
func BenchmarkBlake3(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 256 << 10} {
		data := make([]byte, size)
		b.Run("zeebo/"+byteSize(size), func(b *testing.B) {
			h := blake3.New()
			b.SetBytes(int64(size))
			for b.Loop() {
				h.Reset()
				h.Write(data)
				h.Sum(nil)
			}
		})
		b.Run("lukechampine/"+byteSize(size), func(b *testing.B) {
			h := luke.New(32, nil)
			b.SetBytes(int64(size))
			for b.Loop() {
				h.Reset()
				h.Write(data)
				h.Sum(nil)
			}
		})
	}
}

func byteSize(n int) string {
	return map[int]string{1 << 10: "1KiB", 64 << 10: "64KiB", 256 << 10: "256KiB"}[n]
}

func FuzzContentDigest(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Fuzz(func(t *testing.T, sum []byte) {
		if len(sum) < 32 {
			return
		}
		sum = sum[:32]
		if got, want := ContentDigest(sum), digest.NewDigestFromBytes(ContentAlgorithm, sum); got != want {
			t.Fatalf("ContentDigest = %s, want %s", got, want)
		}
	})
}
