package compose

import (
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// ContextKind says where a build context comes from.
type ContextKind int

// The kinds of build context. Each is decided once, when the project
// loads; the hash and the solve switch on it.
const (
	// LocalContext is a directory on this machine: its files are hashed
	// and sent to buildkitd.
	LocalContext ContextKind = iota + 1
	// ServiceContext is another service's image (`service:NAME`).
	ServiceContext
	// ImageContext is an image in a registry (`docker-image://REF`).
	ImageContext
	// RemoteContext is anything buildkitd fetches itself: a Git
	// repository, an HTTP URL, an OCI layout.
	RemoteContext
)

// imagePrefix marks an image context, as BuildKit's frontend reads it.
const imagePrefix = "docker-image://"

// Context is one build context, classified.
type Context struct {
	Kind ContextKind
	// Source is what the context names: the absolute directory
	// (LocalContext), the service's name (ServiceContext), the image
	// reference (ImageContext) or the URL as written (RemoteContext).
	Source string
}

// String returns the context as a compose file writes it.
func (c Context) String() string {
	switch c.Kind {
	case ServiceContext:
		return types.ServicePrefix + c.Source
	case ImageContext:
		return imagePrefix + c.Source
	}
	return c.Source
}

// mainContext classifies build.context: a directory or a remote (the
// rule of BuildKit's dockerui and compose-go).
func mainContext(v string) Context {
	if isRemote(v) {
		return Context{Kind: RemoteContext, Source: v}
	}
	return Context{Kind: LocalContext, Source: v}
}

// additionalContext classifies an additional_contexts value, which
// compose-go has already made absolute when it is a directory.
func additionalContext(v string) Context {
	if dep, ok := strings.CutPrefix(v, types.ServicePrefix); ok {
		return Context{Kind: ServiceContext, Source: dep}
	}
	if ref, ok := strings.CutPrefix(v, imagePrefix); ok {
		return Context{Kind: ImageContext, Source: ref}
	}
	if strings.Contains(v, "://") || isRemote(v) {
		return Context{Kind: RemoteContext, Source: v}
	}
	return Context{Kind: LocalContext, Source: v}
}

// isRemote reports whether a context is a Git repository or URL rather
// than a local directory.
func isRemote(c string) bool {
	for _, prefix := range []string{"https://", "http://", "git://", "ssh://", "github.com/", "git@"} {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}
