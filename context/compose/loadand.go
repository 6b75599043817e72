package compose

import (
	"context"
	"fmt"
	"reflect"
)

// Load loads the project described by opt, as `docker compose` would
// with the same flags and environment, its files checked against the
// compose schema.
func Load(ctx context.Context, opt Options) (*Project, error) {
	return loadWith(ctx, opt, true)
}

// LoadAnd loads the project described by opt, as `docker compose` would
// with the same flags and environment, and calls use with it, while the
// compose files are checked against the compose schema alongside:
// compiling that schema takes about 20 ms of one core on every run, and
// use (hashing the build contexts, say) need not wait for it.
//
// The result is always use's on a validated project: if the files are
// invalid, the schema's error is returned and use's result dropped; if the
// project loaded without the schema differs from the validated one (it
// should not), use runs again on the validated one. So use may run twice,
// and must not act outside the process: no registry or network work
// (for that, Load, then act).
func LoadAnd(ctx context.Context, opt Options, use func(*Project) error) (*Project, error) {
	type loaded struct {
		p   *Project
		err error
	}
	validated := make(chan loaded, 1)
	go func() {
		p, err := loadWith(ctx, opt, true)
		validated <- loaded{p, err}
	}()
	fast, err := loadUnchecked(ctx, opt)
	if err == nil {
		err = use(fast)
	}
	v := <-validated
	switch {
	case v.err != nil:
		return nil, v.err
	case fast == nil || !reflect.DeepEqual(fast, v.p):
		return v.p, use(v.p)
	}
	return fast, err
}

// loadUnchecked loads without the schema. Input the schema would reject
// may trip the loader up in ways it does not expect: a panic becomes an
// error here, and the validating load reports the real problem.
func loadUnchecked(ctx context.Context, opt Options) (p *Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("loading without the schema: %v", r)
		}
	}()
	return loadWith(ctx, opt, false)
}
