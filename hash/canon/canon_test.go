package canon

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func encode(f func(w *Writer)) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	f(w)
	return buf.Bytes()
}

// TestGolden pins the byte layout: a change here changes every hash bkcache
// has ever published, which requires a new scheme tag.
func TestGolden(t *testing.T) {
	got := encode(func(w *Writer) {
		w.Scheme("bkcache/v1")
		w.Begin("file")
		w.String("a\nb")
		w.Uint(0o644)
		w.Bytes([]byte{0, 1})
		w.End()
		w.Strings([]string{"x", ""})
	})
	const want = "010a626b63616368652f7631050466696c65020361" +
		"0a620302a4030402000106000301020201780200"
	if h := hex.EncodeToString(got); h != want {
		t.Fatalf("encoding changed:\n got %s\nwant %s", h, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{[]byte{2, 0x80, 0x00}, ErrNonCanonical},
		{[]byte{2, 0x81, 0x00, 'a'}, ErrNonCanonical},
		{[]byte{2, 0x80}, ErrTruncated},
		{[]byte{2, 2, 'a'}, ErrTruncated},
	} {
		if _, err := Decode(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("Decode(%x) = %v, want %v", tc.in, err, tc.want)
		}
	}
	for _, tag := range []byte{0, byte(TagEnd) + 1, 0xff} {
		if _, err := Decode([]byte{tag, 0}); err == nil {
			t.Errorf("Decode accepted tag %d", tag)
		}
	}
}

// TestDecodeEveryTag: each tag a Writer writes decodes as itself.
func TestDecodeEveryTag(t *testing.T) {
	enc := encode(func(w *Writer) {
		w.Scheme("s")
		w.String("a")
		w.Uint(7)
		w.Bytes([]byte{1})
		w.Begin("g")
		w.End()
	})
	fields, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := []Tag{TagScheme, TagString, TagUint, TagBytes, TagBegin, TagEnd}
	if len(fields) != len(want) {
		t.Fatalf("%d fields, want %d", len(fields), len(want))
	}
	for i, f := range fields {
		if f.Tag != want[i] {
			t.Errorf("field %d: tag %d, want %d", i, f.Tag, want[i])
		}
	}
}

func TestUnambiguous(t *testing.T) {
	// Pairs that a naive concatenation would confuse.
	pairs := [][2][]string{
		{{"ab", "c"}, {"a", "bc"}},
		{{"a", ""}, {"a"}},
		{{"", ""}, {""}},
	}
	for _, p := range pairs {
		a := encode(func(w *Writer) { w.Strings(p[0]) })
		b := encode(func(w *Writer) { w.Strings(p[1]) })
		if bytes.Equal(a, b) {
			t.Errorf("%q and %q encode alike", p[0], p[1])
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("bkcache/v1", "path/a b", uint64(0o755), []byte("x"))
	f.Add("", "", uint64(0), []byte{})
	f.Add("\x00", "\n\n", uint64(1<<63), []byte{0xff})
	f.Fuzz(func(t *testing.T, scheme, s string, u uint64, b []byte) {
		enc := encode(func(w *Writer) {
			w.Scheme(scheme)
			w.String(s)
			w.Uint(u)
			w.Bytes(b)
		})
		fields, err := Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if len(fields) != 4 || string(fields[0].Value) != scheme ||
			string(fields[1].Value) != s || !bytes.Equal(fields[3].Value, b) {
			t.Fatalf("round trip lost data: %q", fields)
		}
		// Re-encoding the decoded fields gives the same bytes.
		again := encode(func(w *Writer) {
			for _, f := range fields {
				w.fieldBytes(f.Tag, f.Value)
			}
		})
		if !bytes.Equal(enc, again) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{1, 2, 'a', 'b'})
	f.Add([]byte{9})
	f.Add([]byte{1, 0xff})
	f.Add([]byte{2, 0x80, 0x00}) // a length of 0 in two bytes
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes is exactly one Writer's output: the encoding is a
		// bijection, so a hash names one field sequence.
		again := encode(func(w *Writer) {
			for _, f := range fields {
				w.fieldBytes(f.Tag, f.Value)
			}
		})
		if !bytes.Equal(again, b) {
			t.Fatalf("Decode accepted %x, which no Writer writes (re-encoded: %x)", b, again)
		}
	})
}
