package inject

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"

	"github.com/guestinject/guestinject/vfs"
)

// A file written offline carries no SELinux label, and sshd on an
// enforcing guest refuses an unlabelled authorized_keys. Like nova, when
// the guest has /etc/selinux the keys item makes the guest relabel ~/.ssh
// at boot from rc.local.

// selinuxMarker begins the block added to rc.local.
const selinuxMarker = "# Added by guestinject: give the injected SSH keys their SELinux context"

// planSELinux adds the relabel step to rc.local when the guest uses
// SELinux and rc.local does not already relabel sshDir.
func planSELinux(fsys vfs.FS, it *item, sshDir string) error {
	if has, err := fsys.HasFile("/etc/selinux"); err != nil || !has {
		return err
	}
	rc := "/etc/rc.local"
	hasRC, err := fsys.HasFile(rc)
	if err != nil {
		return err
	}
	if hasRC2, err := fsys.HasFile("/etc/rc.d"); err == nil && !hasRC && hasRC2 {
		rc = "/etc/rc.d/rc.local"
	}
	old, exists, err := readGuestOptional(fsys, rc)
	if err != nil {
		return err
	}
	cmd := fmt.Sprintf("restorecon -RF %s 2>/dev/null || :", shellQuote(sshDir))
	if bytes.Contains(old, []byte(cmd)) {
		return nil
	}
	it.replace(rc, withRelabel(old, exists, cmd))
	if exec, err := executable(fsys, rc, exists); err != nil || !exec {
		it.chmod(rc, 0o755)
	}
	it.rep.Summary += "; SELinux relabel added to " + rc
	return nil
}

// withRelabel returns rc.local with the relabel block added: before a
// final "exit 0" (which would make an appended line dead), else at the end;
// a new file gets a shell line first.
func withRelabel(old []byte, exists bool, cmd string) []byte {
	block := "\n" + selinuxMarker + "\n" + cmd + "\n"
	if !exists || len(old) == 0 {
		return []byte("#!/bin/sh" + block)
	}
	s := string(old)
	trimmed := strings.TrimRight(s, " \t\r\n")
	if i := strings.LastIndexByte(trimmed, '\n'); strings.TrimSpace(trimmed[i+1:]) == "exit 0" {
		return []byte(trimmed[:i+1] + block[1:] + "\n" + s[i+1:])
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(s + block)
}

// executable reports whether the existing file p has its owner's execute
// bit (false when the backend cannot tell).
func executable(fsys vfs.FS, p string, exists bool) (bool, error) {
	r, ok := fsys.(vfs.Reader)
	if !exists || !ok {
		return false, nil
	}
	fi, err := r.Stat(p)
	if err != nil {
		return false, err
	}
	return fi.Mode&fs.FileMode(0o100) != 0, nil
}

// shellQuote quotes s for sh when it holds anything beyond a safe set.
func shellQuote(s string) string {
	safe := true
	for _, c := range s {
		if !(c == '/' || c == '.' || c == '_' || c == '-' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
