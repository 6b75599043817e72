package tree

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// faultyFS fails one thing at one path, as a disk or a racing writer
// does: the walk's report of the path, its metadata, a read half way,
// or its content grown since the walk.
type faultyFS struct {
	FS
	path string
	kind string // "walk", "info", "read", "socket", "bare-link", "grown"
}

var errDisk = errors.New("input/output error")

func (f faultyFS) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	return f.FS.Walk(ctx, target, func(p string, d fs.DirEntry, err error) error {
		if p == f.path {
			switch f.kind {
			case "walk":
				return fn(p, d, errDisk)
			case "info", "socket", "bare-link":
				d = faultyEntry{DirEntry: d, kind: f.kind}
			}
		}
		return fn(p, d, err)
	})
}

func (f faultyFS) Open(p string) (io.ReadCloser, error) {
	rc, err := f.FS.Open(p)
	if err != nil || p != f.path {
		return rc, err
	}
	switch f.kind {
	case "read":
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(strings.NewReader("half"), errReader{}), rc}, nil
	case "grown": // one read returns it all, as from a file that grew
		b, err := io.ReadAll(rc)
		return struct {
			io.Reader
			io.Closer
		}{bytes.NewReader(append(b, " and more"...)), rc}, err
	}
	return rc, err
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errDisk }

type faultyEntry struct {
	fs.DirEntry
	kind string
}

func (d faultyEntry) Info() (fs.FileInfo, error) {
	info, err := d.DirEntry.Info()
	switch d.kind {
	case "info":
		return nil, errDisk
	case "socket":
		return modeInfo{info, fs.ModeSocket | 0o600}, err
	case "bare-link":
		return modeInfo{info, fs.ModeSymlink | 0o777}, err
	}
	return info, err
}

type modeInfo struct {
	fs.FileInfo
	mode fs.FileMode
}

func (i modeInfo) Mode() fs.FileMode { return i.mode }
func (i modeInfo) Sys() any          { return nil }

// TestFaults: every failure of the file system fails the hash with an
// error naming the path and what failed; none is a digest of part of the
// tree. A file that grew between the walk and the read is hashed, and
// sized, as read.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		kind, path string
		want       []string
	}{
		{"walk", "app/main.go", []string{"walking app/main.go", "input/output error"}},
		{"walk", "app", []string{"walking app", "input/output error"}},
		{"info", "app/run.sh", []string{"reading metadata of app/run.sh", "input/output error"}},
		{"socket", "app/run.sh", []string{"app/run.sh", "unsupported file type"}},
		{"bare-link", "app/main.go", []string{"app/main.go", "symlink without a target"}},
		{"read", "app/main.go", []string{"reading app/main.go", "input/output error"}},
	} {
		t.Run(tc.kind+" "+tc.path, func(t *testing.T) {
			for _, workers := range []int{1, 4} {
				res, err := Hash(context.Background(), faultyFS{FS: FromFS(base()), path: tc.path, kind: tc.kind}, Options{Workers: workers})
				if err == nil {
					t.Fatalf("workers %d: no error, digest %s", workers, res.Digest)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("workers %d: error %q does not say %q", workers, err, w)
					}
				}
			}
		})
	}
	t.Run("grown", func(t *testing.T) {
		res, err := Hash(context.Background(), faultyFS{FS: FromFS(base()), path: "app/main.go", kind: "grown"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := []byte("package main\n and more")
		for _, e := range res.Entries {
			if e.Path == "app/main.go" && (e.Size != int64(len(want)) || e.Digest != digestOf(want)) {
				t.Errorf("grown file: size %d digest %s, want %d %s", e.Size, e.Digest, len(want), digestOf(want))
			}
		}
		m := base()
		m["app/main.go"] = &fstest.MapFile{Data: want, Mode: 0o644}
		if ref := hashMap(t, m); ref.Digest != res.Digest || ref.Bytes != res.Bytes {
			t.Errorf("grown file: tree %s (%d bytes), want that of the tree as read, %s (%d bytes)", res.Digest, res.Bytes, ref.Digest, ref.Bytes)
		}
	})
}

// TestSkip: Options.Skip leaves out the files it names, never a
// directory (whose files a pattern may still let in).
func TestSkip(t *testing.T) {
	skip := func(p string) bool { return p == "app" || strings.HasSuffix(p, ".sh") }
	res, err := Hash(context.Background(), FromFS(base()), Options{Skip: skip})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range res.Entries {
		paths = append(paths, e.Path)
	}
	if got, want := strings.Join(paths, " "), "app app.txt app/link app/main.go app/z app/z/nested empty weird\nname"; got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
}

// TestCancelled: a cancelled hash ends in the context's error.
func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := base()
	for i := range 200 {
		big["many/"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26))] = &fstest.MapFile{Data: bytes.Repeat([]byte{byte(i)}, 10)}
	}
	if _, err := Hash(ctx, FromFS(big), Options{Workers: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
