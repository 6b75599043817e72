package inputs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// A file name, or a link's target, need not be UTF-8, and JSON would
// store each byte that is not as U+FFFD: two names would read back alike,
// and explain would report the wrong files added and removed. Such a
// name is stored escaped, as the body of a Go string literal (\xNN for
// each byte that is not UTF-8), with a flag, and read back exactly.

// fileJSON is File as JSON stores it.
type fileJSON struct {
	filePlain
	PathEscaped bool `json:"pathEscaped,omitempty"`
	LinkEscaped bool `json:"linkEscaped,omitempty"`
}

type filePlain File

// MarshalJSON stores f, escaping a name that is not UTF-8.
func (f File) MarshalJSON() ([]byte, error) {
	out := fileJSON{filePlain: filePlain(f)}
	out.Path, out.PathEscaped = escapeName(f.Path)
	out.Link, out.LinkEscaped = escapeName(f.Link)
	return json.Marshal(out)
}

// UnmarshalJSON reads f back, unescaping an escaped name.
func (f *File) UnmarshalJSON(b []byte) error {
	var in fileJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	var err error
	if in.Path, err = unescapeName(in.Path, in.PathEscaped); err != nil {
		return fmt.Errorf("file path: %w", err)
	}
	if in.Link, err = unescapeName(in.Link, in.LinkEscaped); err != nil {
		return fmt.Errorf("link of %q: %w", in.Path, err)
	}
	*f = File(in.filePlain)
	return nil
}

func escapeName(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1], true
}

func unescapeName(s string, escaped bool) (string, error) {
	if !escaped {
		return s, nil
	}
	return strconv.Unquote(`"` + s + `"`)
}
