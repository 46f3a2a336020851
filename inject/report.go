package inject

// Status is the outcome of one item.
type Status string

const (
	StatusPlanned Status = "planned" // validated; Plan writes nothing
	StatusDone    Status = "done"    // written
	StatusFailed  Status = "failed"  // validation or a write failed: see Error
	StatusSkipped Status = "skipped" // not written because a mandatory item failed
)

// Report is the outcome of Plan or Apply, item by item. It marshals to JSON
// as the CLI's --json output.
type Report struct {
	DryRun bool         `json:"dry_run"`
	Items  []ItemReport `json:"items"`
}

// OK reports whether no item failed.
func (r *Report) OK() bool {
	for _, it := range r.Items {
		if it.Status == StatusFailed {
			return false
		}
	}
	return true
}

// ItemReport is one item: what, where, its outcome and the writes it makes.
type ItemReport struct {
	Kind Kind   `json:"kind"`
	Path string `json:"path"` // the guest file the item is about
	// Op is the ordered operation a customize item carries out, as the
	// command line gives it ("--mkdir /opt/app").
	Op        string   `json:"op,omitempty"`
	Status    Status   `json:"status"`
	Mandatory bool     `json:"mandatory"`
	Summary   string   `json:"summary,omitempty"` // e.g. "1 key added, 1 already present"
	Actions   []Action `json:"actions,omitempty"`
	// Network details the network item: the format written and why,
	// the files replaced, and other files left alone that also configure
	// the interfaces.
	Network *NetworkReport `json:"network,omitempty"`
	// Changes are the guest paths the item touches, each once, in the
	// order first touched, with what the write does to it.
	Changes []Change `json:"changes,omitempty"`
	Error   string   `json:"error,omitempty"`
	Err     error    `json:"-"` // the error itself, for errors.Is
}

// Action is one filesystem operation of an item.
type Action struct {
	Op    Op     `json:"op"`
	Path  string `json:"path"`
	Mode  string `json:"mode,omitempty"`  // chmod: octal, e.g. "0600"
	Owner string `json:"owner,omitempty"` // chown: "uid:gid" from the guest
	Bytes int    `json:"bytes,omitempty"` // append, replace: bytes written
	// Target: symlink, the link's target; rename, the new path; link,
	// the existing name.
	Target string `json:"target,omitempty"`
	// Label: relabel, the SELinux context written.
	Label string `json:"label,omitempty"`
}

// Op is an operation of vfs.FS.
type Op string

const (
	OpMkdir   Op = "mkdir"   // MakePath
	OpAppend  Op = "append"  // AppendFile
	OpReplace Op = "replace" // ReplaceFile
	OpChmod   Op = "chmod"   // SetPermissions
	OpChown   Op = "chown"   // SetOwnership
	OpSymlink Op = "symlink" // vfs.Symlinker
	OpRemove  Op = "remove"  // vfs.Remover
	OpRename  Op = "rename"  // vfs.Renamer
	OpLink    Op = "link"    // vfs.Linker
	OpTimes   Op = "times"   // vfs.TimeSetter
	OpRelabel Op = "relabel" // vfs.XattrWriter: security.selinux set to Label
)

// NetworkReport is what the network item decided and found.
type NetworkReport struct {
	NetDetection
	Dialect  string   `json:"dialect,omitempty"`  // a variant of the format written, e.g. ifupdown-ng
	Files    []string `json:"files,omitempty"`    // the files written
	Replaced []string `json:"replaced,omitempty"` // written files that existed before
	// AlsoConfigured lists other guest files that configure one of the
	// interfaces too; they are left alone. Each entry is "PATH: why".
	AlsoConfigured []string `json:"also_configured,omitempty"`
}

// ChangeKind is what an item does to one guest path, as the write does it.
type ChangeKind string

const (
	ChangeCreate    ChangeKind = "create"    // the path is new: a file or directory is made
	ChangeReplace   ChangeKind = "replace"   // an existing file's content is replaced
	ChangeAppend    ChangeKind = "append"    // bytes are added at the end of an existing file
	ChangeModify    ChangeKind = "modify"    // only the mode or owner of an existing object changes
	ChangeUnchanged ChangeKind = "unchanged" // the path is already as the item wants it
	ChangeDelete    ChangeKind = "delete"    // the object is removed (or moved away)
)

// Change is one guest path an item touches, with the outcome of all its
// writes to that path: the plan and the real run report the same words.
// Mode and Owner are what the item sets (empty when it sets none).
type Change struct {
	Path   string     `json:"path"`
	Change ChangeKind `json:"change"`
	Type   string     `json:"type"`             // "dir", "file", "symlink"
	Bytes  int        `json:"bytes,omitempty"`  // create, replace, append: bytes written
	Mode   string     `json:"mode,omitempty"`   // e.g. "0600"
	Owner  string     `json:"owner,omitempty"`  // "uid:gid" from the guest
	Target string     `json:"target,omitempty"` // a symlink's target
	Label  string     `json:"label,omitempty"`  // the SELinux context set (selinux-relabel)
}
