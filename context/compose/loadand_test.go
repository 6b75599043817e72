package compose

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestLoadAnd checks that LoadAnd answers exactly as Load followed by use
// would: the same project, or the same error, whatever the files hold.
func TestLoadAnd(t *testing.T) {
	valid := "services:\n  a:\n    build: .\n    image: r/a\n  b:\n    build: {context: ., args: {X: '${X:-1}'}}\n"
	for _, tc := range []struct {
		name    string
		compose string
	}{
		{"valid", valid},
		{"obsolete version key", "version: '3.8'\n" + valid},
		{"malformed yaml", "services: [\n"},
		{"services a list", "services: [1, 2]\n"},
		{"build a number", "services:\n  a:\n    build: 42\n"},
		{"unknown build key", "services:\n  a:\n    build: {context: ., nope: 1}\n"},
		{"context a list", "services:\n  a:\n    build: {context: [1]}\n"},
		{"args a number", "services:\n  a:\n    build: {context: ., args: 7}\n"},
		{"empty file", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sourcetest.Tree(t, map[string]string{"compose.yaml": tc.compose})
			opt := Options{ProjectDir: dir}
			want, wantErr := loadWith(context.Background(), opt, true)

			var calls int
			var seen *Project
			got, err := LoadAnd(context.Background(), opt, func(p *Project) error {
				calls++
				seen = p
				return nil
			})
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("LoadAnd error %v, Load error %v", err, wantErr)
			}
			if err != nil {
				if calls > 0 && seen == nil {
					t.Errorf("use ran on a project that did not load")
				}
				return
			}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(seen, want) {
				t.Errorf("LoadAnd gave %+v and used %+v, Load gave %+v", got, seen, want)
			}
			if calls != 1 {
				t.Errorf("use ran %d times, want once", calls)
			}
		})
	}
}

func TestLoadAndUseError(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"compose.yaml": "services:\n  a:\n    build: .\n"})
	boom := errors.New("boom")
	_, err := LoadAnd(context.Background(), Options{ProjectDir: dir}, func(*Project) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want use's error", err)
	}
	// Invalid files: the schema's error wins over use's.
	dir = sourcetest.Tree(t, map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., nope: 1}\n"})
	_, err = LoadAnd(context.Background(), Options{ProjectDir: dir}, func(*Project) error { return boom })
	if err == nil || errors.Is(err, boom) {
		t.Fatalf("got %v, want the schema's error", err)
	}
}
