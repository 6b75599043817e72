package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
)

// CacheConfigType is the media type of BuildKit's cache configuration.
const CacheConfigType = "application/vnd.buildkit.cacheconfig.v0"

// CacheInfo describes a BuildKit registry cache, for audit.
type CacheInfo struct {
	Ref       string        `json:"ref"`
	Digest    digest.Digest `json:"digest"`
	Form      string        `json:"form"` // "image-manifest" or "index"
	MediaType string        `json:"mediaType"`
	Records   int           `json:"records"`
	Layers    []CacheLayer  `json:"layers"`
	Size      int64         `json:"size"` // layers plus config
	Created   *time.Time    `json:"created,omitempty"`
}

// CacheLayer is one blob of a cache.
type CacheLayer struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Created   *time.Time    `json:"created,omitempty"`
}

// InspectCache reads the BuildKit cache at ref: its layers, its number of
// cache records, its size and when its newest layer was created.
func (r *Registry) InspectCache(ctx context.Context, ref name.Reference) (*CacheInfo, error) {
	info, config, err := r.cacheManifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	b, err := r.blob(ctx, ref, ref.Context().Digest(config.Digest.String()))
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: malformed cache config: %w", ref, err)
	}
	info.Records = len(cfg.Records)
	return info, nil
}

// CacheConfig returns the config blob of the BuildKit cache at ref: its
// records, the graph of cache keys it holds.
func (r *Registry) CacheConfig(ctx context.Context, ref name.Reference) ([]byte, error) {
	_, config, err := r.cacheManifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	return r.blob(ctx, ref, ref.Context().Digest(config.Digest.String()))
}

// CacheSize returns the size of the BuildKit cache at ref (its layers and
// config), from its manifest alone.
func (r *Registry) CacheSize(ctx context.Context, ref name.Reference) (int64, error) {
	info, _, err := r.cacheManifest(ctx, ref)
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

// cacheManifest reads what the manifest of the cache at ref says: its
// form, layers and size, and its config's descriptor.
func (r *Registry) cacheManifest(ctx context.Context, ref name.Reference) (*CacheInfo, v1.Descriptor, error) {
	var config v1.Descriptor
	desc, err := remote.Get(ref, r.opts(ctx)...)
	if err != nil {
		if _, found, herr := r.Head(ctx, ref); herr == nil && !found {
			return nil, config, fmt.Errorf("%s: %w", ref, ErrNotFound)
		}
		return nil, config, wrap(ref, err)
	}
	info := &CacheInfo{Ref: ref.String(), Digest: digest.Digest(desc.Digest.String()), MediaType: string(desc.MediaType)}
	var layers []v1.Descriptor
	form := FormOf(desc.MediaType)
	info.Form = string(form)
	switch form {
	case Index:
		var im v1.IndexManifest
		if err := json.Unmarshal(desc.Manifest, &im); err != nil {
			return nil, config, fmt.Errorf("%s: malformed index: %w", ref, err)
		}
		for _, d := range im.Manifests {
			if d.MediaType == CacheConfigType {
				config = d
			} else {
				layers = append(layers, d)
			}
		}
	default:
		var m v1.Manifest
		if err := json.Unmarshal(desc.Manifest, &m); err != nil {
			return nil, config, fmt.Errorf("%s: malformed manifest: %w", ref, err)
		}
		config, layers = m.Config, m.Layers
	}
	if config.MediaType != CacheConfigType {
		return nil, config, fmt.Errorf("%s is not a BuildKit cache (no %s config): is it an image? cache refs are REPOSITORY:cache-HASH and REPOSITORY:cache-ci", ref, CacheConfigType)
	}
	info.Size = config.Size
	for _, l := range layers {
		cl := CacheLayer{Digest: digest.Digest(l.Digest.String()), MediaType: string(l.MediaType), Size: l.Size}
		if t, err := time.Parse(time.RFC3339Nano, l.Annotations["buildkit/createdat"]); err == nil {
			cl.Created = &t
			if info.Created == nil || t.After(*info.Created) {
				info.Created = &t
			}
		}
		info.Size += l.Size
		info.Layers = append(info.Layers, cl)
	}
	return info, config, nil
}
