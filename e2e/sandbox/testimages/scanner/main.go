// Command scanner is an SBOM generator for the e2e tests, speaking
// BuildKit's scanner protocol: it reads the image's filesystem at
// $BUILDKIT_SCAN_SOURCE and writes one in-toto statement, an SPDX
// document listing every regular file with its SHA-256, to
// $BUILDKIT_SCAN_DESTINATION/sbom.spdx.json. The sandbox pushes it as an
// image, so that SBOM tests need nothing from outside.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

type checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type file struct {
	Name      string     `json:"fileName"`
	ID        string     `json:"SPDXID"`
	Checksums []checksum `json:"checksums"`
}

func main() {
	src, dst := os.Getenv("BUILDKIT_SCAN_SOURCE"), os.Getenv("BUILDKIT_SCAN_DESTINATION")
	if src == "" || dst == "" {
		fmt.Fprintln(os.Stderr, "scanner: BUILDKIT_SCAN_SOURCE and BUILDKIT_SCAN_DESTINATION must be set (run by BuildKit as an SBOM generator)")
		os.Exit(2)
	}
	files, err := scan(src)
	if err == nil {
		err = write(filepath.Join(dst, "sbom.spdx.json"), files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scanner:", err)
		os.Exit(1)
	}
}

func scan(root string) ([]file, error) {
	files := []file{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, file{
			Name:      "/" + filepath.ToSlash(rel),
			ID:        fmt.Sprintf("SPDXRef-File-%d", len(files)+1),
			Checksums: []checksum{{Algorithm: "SHA256", Value: hex.EncodeToString(h.Sum(nil))}},
		})
		return nil
	})
	return files, err
}

func write(path string, files []file) error {
	stmt := map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://spdx.dev/Document",
		"subject":       []any{},
		"predicate": map[string]any{
			"spdxVersion":       "SPDX-2.3",
			"dataLicense":       "CC0-1.0",
			"SPDXID":            "SPDXRef-DOCUMENT",
			"name":              "bkcache-e2e-scan",
			"documentNamespace": fmt.Sprintf("https://bkcache.invalid/e2e/%d", time.Now().UnixNano()),
			"creationInfo":      map[string]any{"creators": []string{"Tool: bkcache-e2e-scanner"}, "created": time.Now().UTC().Format(time.RFC3339)},
			"files":             files,
		},
	}
	b, err := json.Marshal(stmt)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
