package inject

import (
	"fmt"

	"github.com/guestinject/guestinject/errs"
)

// Sentinels of this package. Every error Plan and Apply return wraps one of
// them (or a vfs/fs sentinel) in an *ItemError naming the item and the guest
// path, so callers test them with errors.Is.
var (
	// ErrInvalidKey: a key is not a single OpenSSH authorized_keys line.
	ErrInvalidKey = errs.New(errs.ErrInvalid, "invalid SSH public key")
	// ErrNoSuchUser: a user named by the injection is missing from the
	// guest's /etc/passwd or /etc/shadow.
	ErrNoSuchUser = errs.New(errs.ErrNotFound, "no such user in the guest")
	// ErrInvalidNetwork: the network description is inconsistent or holds
	// an invalid interface name, address, gateway or MAC.
	ErrInvalidNetwork = errs.New(errs.ErrInvalid, "invalid network configuration")
	// ErrNetworkStackUnknown: the guest's network stack cannot be told
	// from its files (none found, or several configured and none
	// enabled); the caller must name the format.
	ErrNetworkStackUnknown = errs.New(errs.ErrAmbiguous, "cannot tell the guest's network stack")
	// ErrNetworkConflict: the configuration would not take effect
	// (another file the stack reads first configures the interface).
	ErrNetworkConflict = errs.New(errs.ErrUnsupported, "network configuration would be overridden")
	// ErrInvalidMeta: a metadata key or value is not valid UTF-8.
	ErrInvalidMeta = errs.New(errs.ErrInvalid, "invalid metadata")
	// ErrInvalidFile: a file to inject has an unusable guest path or mode.
	ErrInvalidFile = errs.New(errs.ErrInvalid, "invalid file to inject")
	// ErrInvalidPassword: the admin password request is inconsistent (no
	// or two secrets, an unknown crypto, a hash that cannot sit in
	// /etc/shadow).
	ErrInvalidPassword = errs.New(errs.ErrInvalid, "invalid admin password")
	// ErrBadShadow: the guest's /etc/shadow cannot be edited safely (the
	// user's line lacks the password field, or the user has two lines).
	ErrBadShadow = errs.New(errs.ErrCorrupt, "malformed guest /etc/shadow")
	// ErrUnsafeSymlink: a path whose mode and owner the injection sets
	// (~/.ssh, authorized_keys) is a symlink in the guest.
	ErrUnsafeSymlink = errs.New(errs.ErrUnsupported, "refusing to set mode and owner through a guest symlink")
	// ErrTooLarge: a guest file the injection must read is larger than
	// the injector accepts.
	ErrTooLarge = errs.New(errs.ErrUnsupported, "guest file too large")
	// ErrInvalidOp: an ordered operation (--mkdir, --copy, ...) has an
	// unusable argument or cannot be carried out on the guest as the
	// operations before it leave it.
	ErrInvalidOp = errs.New(errs.ErrInvalid, "invalid operation")
	// ErrNotEmpty: a directory that must be empty (removed, or replaced
	// by a move) is not.
	ErrNotEmpty = errs.New(errs.ErrInvalid, "directory not empty")
)

// ItemError is the error of one injection item: which item, the guest path
// it concerns, and why.
type ItemError struct {
	Kind Kind
	Path string
	Err  error
}

func (e *ItemError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %v", e.Kind, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Kind, e.Path, e.Err)
}

func (e *ItemError) Unwrap() error { return e.Err }
