package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// parseInterspersed parses fs over args, allowing flags after positional
// arguments (everything after "--" is positional), and returns the
// positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagError turns a flag package error into a usage error; -h/--help is
// returned as flag.ErrHelp.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usagef("%v", err)
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// offsetFlag is --offset BYTES.
type offsetFlag int64

func (o *offsetFlag) String() string { return strconv.FormatInt(int64(*o), 10) }
func (o *offsetFlag) Set(s string) error {
	base, digits := 10, s
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		base, digits = 16, h
	}
	v, err := strconv.ParseInt(digits, base, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("want a byte count >= 0, decimal or 0x hex")
	}
	*o = offsetFlag(v)
	return nil
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

const helpText = `inject edits a guest filesystem offline: no root, no mount, no helper VM.

Usage:
  inject [flags] TARGET             inject into a guest
  inject cat [--offset BYTES] TARGET GUESTPATH...
                                    print guest files
  inject ls [-l] [--offset BYTES] TARGET GUESTPATH
                                    list a guest directory (with -l: mode, uid,
                                    gid, size, name, and -> target for symlinks)

TARGET is a directory holding a guest root (an unpacked rootfs), or a raw
image file holding an ext2/3/4 filesystem at --offset (ext images are
read-only for now: cat and ls work, injection reports the read-only error).
Every input is validated against the guest before the first write; if any
item fails, nothing is written.

Flags:
  --key FILE                  SSH public key file (repeatable); every key line
                              in it is added to ~/.ssh/authorized_keys of
                              --key-user unless already there
                                e.g. --key ~/.ssh/id_ed25519.pub
  --key-user NAME             whose authorized_keys (default root); home, uid
                              and gid come from the guest's /etc/passwd
                                e.g. --key-user debian
  --meta KEY=VALUE            metadata pair for /meta.js (repeatable)
                                e.g. --meta role=web --meta owner=ops
  --net FILE                  install FILE as /etc/network/interfaces
                                e.g. --net ./interfaces
  --ip IFACE=ADDR/PREFIX[,gw=GW][,dns=DNS1;DNS2][,hw=MAC][,ip6=ADDR6/PREFIX][,gw6=GW6]
  --ip IFACE=dhcp[,dns=...][,hw=MAC][,ip6=ADDR6/PREFIX][,gw6=GW6]
                              structured interface (repeatable), rendered into
                              /etc/network/interfaces; not with --net
                                e.g. --ip 'eth0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53;9.9.9.9'
                                     --ip eth1=dhcp,hw=52:54:00:12:34:56
  --file GUESTPATH=LOCALFILE  inject a file: missing parents are created 0755
                              root:root, the content is replaced (repeatable)
                                e.g. --file /etc/motd=./motd
  --root-password SELECTOR    set root's password hash in /etc/shadow:
                              password:TEXT | file:PATH (its first line) |
                              random (generated, printed once to stderr)
                                e.g. --root-password file:./root-pw.txt
  --password-crypto sha512|md5
                              hash scheme for --root-password (default sha512;
                              md5 for old guests)
                                e.g. --password-crypto md5
  --offset BYTES              byte offset of the filesystem in an image file
                              (default 0)
                                e.g. --offset 1048576
  --dry-run                   validate and report the plan, write nothing
                                e.g. inject --dry-run --key id.pub ./rootfs
  --json                      machine-readable report on stdout
                                e.g. inject --json --meta a=b ./rootfs | jq .
  -h, --help                  this help

Exit status: 0 success, 1 the injection or a read failed (stderr names the
path and why), 2 usage error.

Examples:
  inject --key id.pub --meta role=web --ip eth0=192.0.2.10/24,gw=192.0.2.1 ./rootfs
  inject --dry-run --json --root-password random ./rootfs
  inject cat disk.img /etc/os-release
  inject ls -l disk.img /etc
`
