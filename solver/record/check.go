package record

import (
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// A record is read from files and registries anyone who can push writes.
// What of it ends up in tags, code spans or variables must be what it
// claims: every hash and digest is checked when the record is parsed.

// check refuses a record whose hashes or digests are not well formed.
func (m *Run) check() error {
	for _, s := range m.Services {
		if err := s.check(); err != nil {
			return fmt.Errorf("service %q: %w", s.Service, err)
		}
	}
	return nil
}

func (s *Service) check() error {
	hexes := map[string]string{"hash": s.Hash}
	digests := map[string]digest.Digest{"digest": s.Digest}
	if c := s.Changes; c != nil {
		hexes["changes.oldHash"], hexes["changes.newHash"] = c.OldHash, c.NewHash
	}
	if in := s.Inputs; in != nil {
		digests["inputs.hash"], digests["inputs.dockerfile.digest"] = in.Hash, in.Dockerfile.Digest
		for _, src := range in.Sources {
			digests["source "+src.Name] = src.Digest
			for _, f := range src.Files {
				if err := valid(f.Digest); err != nil {
					return fmt.Errorf("file %q of source %q: %w", f.Path, src.Name, err)
				}
			}
		}
		for _, r := range in.Services {
			digests["service "+r.Name] = r.Hash
		}
		for _, im := range in.Images {
			digests["image "+im.Ref] = im.Digest
		}
	}
	for what, h := range hexes {
		if h != "" && !isHex(h, 64) {
			return fmt.Errorf("%s %q is not 64 hex digits", what, h)
		}
	}
	for what, d := range digests {
		if err := valid(d); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// digestHex is the length of the hex of each algorithm a record's
// digests use: sha256 for images and hashes, blake3 for file contents.
var digestHex = map[string]int{"sha256": 64, "sha512": 128, "blake3": 64}

// valid checks a digest's form (ALGORITHM:HEX); an absent one is valid.
func valid(d digest.Digest) error {
	if d == "" {
		return nil
	}
	alg, enc, _ := strings.Cut(string(d), ":")
	n, ok := digestHex[alg]
	if !ok || !isHex(enc, n) {
		return fmt.Errorf("digest %q is not ALGORITHM:HEX (sha256, sha512 or blake3)", string(d))
	}
	return nil
}
