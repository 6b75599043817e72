package inputs

import (
	"context"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestRedactedHash: with a key, the inputs hold a redacted arg's MAC, not
// its value, and the hash covers the MAC: the same value and key give the
// same hash (a skip), another value another hash (never a stale image),
// another key another hash, and recomputing the hash from what a record
// stores (the MAC) gives R:H without the value, so a guess cannot be
// checked against it. Without a key the hash covers the value itself.
func TestRedactedHash(t *testing.T) {
	hashWith := func(token string, red Redaction) *Inputs {
		t.Helper()
		dir := sourcetest.Tree(t, map[string]string{
			"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args: {TOKEN: " + token + ", OTHER: x}\n",
			"Dockerfile":   "FROM scratch\nARG TOKEN\nCOPY f /\n",
			"f":            "f",
		})
		ins, err := ComputeAll(context.Background(), loadServices(t, dir), Options{Redact: red})
		if err != nil {
			t.Fatal(err)
		}
		return ins[0]
	}
	k1, k2 := NewRedaction([]string{"TOKEN"}, "k1"), NewRedaction([]string{"TOKEN"}, "k2")
	none := NewRedaction([]string{"TOKEN"}, "")
	a, a2, b := hashWith("s3cr3t", k1), hashWith("s3cr3t", k1), hashWith("other", k1)
	if a.Hash != a2.Hash || a.Hash == b.Hash {
		t.Errorf("same value: %s, %s; another: %s", a.Hash, a2.Hash, b.Hash)
	}
	if a.Args["TOKEN"] != k1.Value("s3cr3t") || a.Args["OTHER"] != "x" || strings.Contains(a.Args["TOKEN"], "s3cr3t") {
		t.Errorf("inputs hold TOKEN=%q OTHER=%q", a.Args["TOKEN"], a.Args["OTHER"])
	}
	if c := hashWith("s3cr3t", k2); c.Hash == a.Hash {
		t.Error("another key gives the same hash")
	}
	// What a record stores is enough to recompute R:H: the value is not
	// part of it.
	stored := k1.Inputs(a)
	if h, err := stored.digest(); err != nil || h != a.Hash {
		t.Errorf("the hash recomputed from the stored inputs = %s, %v; want %s", h, err, a.Hash)
	}
	plain, plain2 := hashWith("s3cr3t", none), hashWith("other", none)
	if plain.Hash == plain2.Hash || plain.Args["TOKEN"] != "s3cr3t" {
		t.Errorf("without a key the hash must cover the value: %s, %s", plain.Hash, plain2.Hash)
	}
	if none.Inputs(plain).Args["TOKEN"] != Bare {
		t.Errorf("without a key a record stores %q", none.Inputs(plain).Args["TOKEN"])
	}
}
