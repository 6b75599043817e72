package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"time"
)

// An SPDX 2.3 document, the fields a binary's SBOM needs.
type spdxDoc struct {
	SPDXVersion       string    `json:"spdxVersion"`
	DataLicense       string    `json:"dataLicense"`
	SPDXID            string    `json:"SPDXID"`
	Name              string    `json:"name"`
	DocumentNamespace string    `json:"documentNamespace"`
	CreationInfo      spdxInfo  `json:"creationInfo"`
	Packages          []spdxPkg `json:"packages"`
	Relationships     []spdxRel `json:"relationships"`
}

type spdxInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPkg struct {
	SPDXID           string       `json:"SPDXID"`
	Name             string       `json:"name"`
	VersionInfo      string       `json:"versionInfo,omitempty"`
	DownloadLocation string       `json:"downloadLocation"`
	FilesAnalyzed    bool         `json:"filesAnalyzed"`
	Checksums        []spdxSum    `json:"checksums,omitempty"`
	ExternalRefs     []spdxExtRef `json:"externalRefs,omitempty"`
	Comment          string       `json:"comment,omitempty"`
	PrimaryPurpose   string       `json:"primaryPackagePurpose,omitempty"`
}

type spdxSum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExtRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRel struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// spdxIDChars are the characters an SPDXID may hold.
var spdxIDChars = regexp.MustCompile(`[^a-zA-Z0-9.-]`)

// writeSBOM writes an SPDX document of the binary at bin: the module it
// was built from (at the version stamped into it) and every module
// linked into it, as its build info records them (what `go version -m`
// prints).
func writeSBOM(dst, bin, name, version string, epoch time.Time) error {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	main := spdxPkg{
		SPDXID: "SPDXRef-Package-bkcache", Name: info.Main.Path, VersionInfo: version,
		DownloadLocation: "https://" + info.Main.Path, PrimaryPurpose: "APPLICATION",
		Checksums: []spdxSum{{Algorithm: "SHA256", Value: hex.EncodeToString(sum[:])}},
		Comment:   fmt.Sprintf("built with %s for %s", info.GoVersion, settingOr(info, "GOOS", "?")+"/"+settingOr(info, "GOARCH", "?")),
	}
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", Name: name,
		DocumentNamespace: "https://github.com/bkcache/bkcache/spdx/" + name + "-" + hex.EncodeToString(sum[:8]),
		CreationInfo:      spdxInfo{Created: epoch.Format(time.RFC3339), Creators: []string{"Tool: bkcache-release"}},
		Packages:          []spdxPkg{main},
		Relationships:     []spdxRel{{"SPDXRef-DOCUMENT", "DESCRIBES", main.SPDXID}},
	}
	for _, d := range info.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		id := "SPDXRef-Package-" + spdxIDChars.ReplaceAllString(m.Path+"-"+m.Version, "-")
		doc.Packages = append(doc.Packages, spdxPkg{
			SPDXID: id, Name: m.Path, VersionInfo: m.Version, DownloadLocation: "NOASSERTION",
			ExternalRefs: []spdxExtRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + m.Path + "@" + m.Version}},
		})
		doc.Relationships = append(doc.Relationships, spdxRel{main.SPDXID, "DEPENDS_ON", id})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(dst, append(b, '\n'), 0o644)
}

func settingOr(info *buildinfo.BuildInfo, key, def string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return def
}
