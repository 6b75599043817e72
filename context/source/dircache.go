package source

// DirCache remembers the names in directories by the directory's own
// identity, so that a walk of a tree that did not change lists none of
// its directories again, as git's untracked cache does. Adding, removing
// or renaming an entry changes its directory's modification and change
// times; a change to a file's content does not, which is why every entry
// is still lstatted (and its own identity compared) however its names
// were found. A cache must not record a directory changed so recently
// that a later change could leave its times as they were (see statcache).
type DirCache interface {
	// Names returns the sorted names in the directory rel (relative to
	// the source, OS separators; "." for the root) when it was last
	// listed with identity id.
	Names(rel string, id Identity) ([]string, bool)
	// StoreNames records the sorted names read from rel with identity
	// id. The cache keeps names as given: the caller does not change
	// them afterwards.
	StoreNames(rel string, id Identity, names []string)
}
