package dockerfile

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImages: the images a build reads, as BuildKit's frontend would
// resolve them: FROM of reached stages after ARG expansion, COPY --from
// and RUN --mount from= images, the # syntax= frontend; never scratch,
// a stage, or a name an additional context overrides.
func TestImages(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dockerfile string
		opt        Options
		want       []string // ref@first-origin-line
		undecided  bool
	}{
		{"plain FROM", "FROM python:3.12-slim\nRUN true\n", Options{}, []string{"python:3.12-slim@1"}, false},
		{"scratch", "FROM scratch\nCOPY a /\n", Options{}, nil, false},
		{"ARG-expanded FROM, default", "ARG V=20\nFROM node:${V}\n", Options{}, []string{"node:20@2"}, false},
		{"ARG-expanded FROM, build arg", "ARG V=20\nFROM node:${V}\n", Options{BuildArgs: map[string]string{"V": "22"}}, []string{"node:22@2"}, false},
		{"stage names are not images", "FROM alpine AS base\nFROM base\nCOPY --from=base /a /\n", Options{}, []string{"alpine@1"}, false},
		{"only reached stages", "FROM golang AS build\nFROM debian AS other\nFROM alpine\nCOPY --from=build /b /\n", Options{}, []string{"alpine@3", "golang@1"}, false},
		{"target", "FROM golang AS build\nFROM alpine\n", Options{Target: "build"}, []string{"golang@1"}, false},
		{"COPY --from image", "FROM scratch\nCOPY --from=busybox:1.36 /bin/sh /sh\n", Options{}, []string{"busybox:1.36@2"}, false},
		{"COPY --from a later stage", "FROM alpine AS a\nCOPY --from=b /x /\nFROM busybox AS b\n", Options{Target: "a"}, []string{"alpine@1", "busybox@3"}, false},
		{"COPY --from stage index", "FROM alpine\nFROM scratch\nCOPY --from=0 /a /a\n", Options{}, []string{"alpine@1"}, false},
		{"RUN --mount from image", "FROM alpine\nRUN --mount=type=bind,from=golang:1.26,target=/go true\nRUN --mount=type=cache,from=tools,target=/t true\n", Options{}, []string{"alpine@1", "golang:1.26@2", "tools@3"}, false},
		{"named context shadows an image", "FROM alpine:3.20\nCOPY --from=lib /x /\nCOPY --from=docker.io/library/node:latest /n /\n", Options{Named: []string{"alpine:3.20", "lib", "node"}}, nil, false},
		{"a context shadows only its own name, tag and all", "FROM node:22 AS a\nFROM node\nCOPY --from=node:20 / /\nCOPY --from=a / /\n", Options{Named: []string{"node"}}, []string{"node:20@3", "node:22@1"}, false},
		{"a context named with its tag", "FROM node:22\nCOPY --from=node / /\n", Options{Named: []string{"node:22"}}, []string{"node@2"}, false},
		{"local context is not an image", "FROM scratch\nCOPY --from=src a /\n", Options{Contexts: []string{"src"}, Named: []string{"src"}}, nil, false},
		{"pinned digest", "FROM alpine@sha256:" + strings.Repeat("a", 64) + "\n", Options{}, []string{"alpine@sha256:" + strings.Repeat("a", 64) + "@1"}, false},
		{"--platform keeps the ref", "FROM --platform=$BUILDPLATFORM golang AS b\nFROM alpine\nCOPY --from=b /x /\n", Options{}, []string{"alpine@2", "golang@1"}, false},
		{"syntax frontend", "# syntax=docker/dockerfile:1.7\nFROM alpine\n", Options{}, []string{"alpine@2", "docker/dockerfile:1.7@1"}, false},
		{"syntax with registry", "#syntax = reg.io/fe/dockerfile@sha256:" + strings.Repeat("b", 64) + "\nFROM scratch\n", Options{}, []string{"reg.io/fe/dockerfile@sha256:" + strings.Repeat("b", 64) + "@1"}, false},
		{"undecidable FROM", "FROM base-${TARGETARCH}\n", Options{}, nil, true},
		{"duplicates merge", "FROM alpine AS a\nFROM alpine AS b\nFROM scratch\nCOPY --from=a /a /\nCOPY --from=b /b /\n", Options{}, []string{"alpine@1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Analyze([]byte(tc.dockerfile), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, im := range a.Images {
				got = append(got, im.Ref+"@"+strconv.Itoa(im.Origins[0].Line))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("images %q, want %q", got, tc.want)
			}
			if (a.Undecided != "") != tc.undecided {
				t.Errorf("undecided %q, want %v", a.Undecided, tc.undecided)
			}
		})
	}
}
