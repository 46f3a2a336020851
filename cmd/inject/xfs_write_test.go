package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/xfs"
	"github.com/guestinject/guestinject/vfs/xfs/oracletest"
)

// xfsGuestImage makes a 300 MiB raw XFS image of the demo guest with
// mkfs.xfs -p and extra mkfs arguments.
func xfsGuestImage(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	var proto bytes.Buffer
	must(t, oracletest.WriteProtofile(&proto, guestDir(t)))
	pf := filepath.Join(dir, "proto")
	must(t, os.WriteFile(pf, proto.Bytes(), 0o644))
	img := filepath.Join(dir, "xfs.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 300<<20))
	testtool.Run(t, "mkfs.xfs", append(append([]string{"-q", "-f", "-p", pf}, args...), img)...)
	return img
}

// xfsRepairClean fails the test unless xfs_repair -n exits 0.
func xfsRepairClean(t *testing.T, img string) {
	t.Helper()
	if out, code := testtool.Output(t, "xfs_repair", "-n", "-f", img); code != 0 {
		t.Fatalf("xfs_repair -n %s: exit %d\n%s", img, code, out)
	}
}

var dbField = regexp.MustCompile(`(?m)^(core\.\w+) = (\S+)`)

// xfsDBStat returns the core fields xfs_db -r prints for guest path p.
func xfsDBStat(t *testing.T, img, p string) map[string]string {
	t.Helper()
	out := testtool.Run(t, "xfs_db", "-r", "-c", "path "+p, "-c", "p core.mode core.uid core.gid core.size core.nlinkv2", img)
	m := map[string]string{}
	for _, s := range dbField.FindAllSubmatch(out, -1) {
		m[string(s[1])] = string(s[2])
	}
	if len(m) != 5 {
		t.Fatalf("xfs_db path %s:\n%s", p, out)
	}
	return m
}

// xfsInjectArgs are the options of the XFS injections: a key, a static
// address, metadata, a file and root's password.
func xfsInjectArgs(t *testing.T) []string {
	return []string{"--key", demoKeyFile, "--ip", "eth0=192.0.2.10/24,gw=192.0.2.1", "--meta", "role=db",
		"--file", "/etc/motd=" + writeTemp(t, "motd", "XFS motd\n"),
		"--root-password", "file:" + writeTemp(t, "pw", "s3cret\n")}
}

// checkXFSInjected verifies what xfsInjectArgs wrote into the raw XFS
// filesystem fsImg, read back by xfs_db and by the CLI's cat of img.
func checkXFSInjected(t *testing.T, img, fsImg string) {
	t.Helper()
	xfsRepairClean(t, fsImg)
	key := strings.TrimSpace(readHost(t, demoKeyFile)) + "\n"
	for p, want := range map[string]map[string]string{
		"/root/.ssh":                 {"core.mode": "040700", "core.uid": "0", "core.gid": "0", "core.nlinkv2": "2"},
		"/root/.ssh/authorized_keys": {"core.mode": "0100600", "core.uid": "0", "core.size": strconv.Itoa(len(key)), "core.nlinkv2": "1"},
		"/etc/motd":                  {"core.mode": "0100644", "core.size": "9"},
	} {
		got := xfsDBStat(t, fsImg, p)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("xfs_db %s: %s = %s, want %s", p, k, got[k], v)
			}
		}
	}
	meta, err := inject.MetaJSON(map[string]string{"role": "db"})
	must(t, err)
	for p, want := range map[string]string{"/root/.ssh/authorized_keys": key, "/meta.js": string(meta), "/etc/motd": "XFS motd\n"} {
		out, errOut, code := cli("cat", img, p)
		wantCode(t, code, exitOK, errOut)
		if out != want {
			t.Errorf("cat %s: %q, want %q", p, out, want)
		}
	}
	out, errOut, code := cli("cat", img, "/etc/network/interfaces")
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "address 192.0.2.10") || !strings.Contains(out, "gateway 192.0.2.1") {
		t.Errorf("/etc/network/interfaces:\n%s", out)
	}
	out, errOut, code = cli("cat", img, "/etc/shadow")
	wantCode(t, code, exitOK, errOut)
	if !strings.HasPrefix(out, "root:$6$") {
		t.Errorf("root's password hash not set:\n%s", out)
	}
}

// TestImageInjectXFS: the CLI injects a key, an address, metadata, a
// file and a password into a raw XFS image; xfs_repair -n is clean,
// xfs_db and `inject cat` read back what was written, and a second run
// adds nothing and stays clean.
func TestImageInjectXFS(t *testing.T) {
	img := xfsGuestImage(t)
	out, errOut, code := cli(append(xfsInjectArgs(t), img)...)
	wantCode(t, code, exitOK, errOut)
	if !strings.Contains(out, "/root/.ssh/authorized_keys") {
		t.Errorf("report:\n%s", out)
	}
	checkXFSInjected(t, img, img)
	_, errOut, code = cli("--key", demoKeyFile, img)
	wantCode(t, code, exitOK, errOut)
	xfsRepairClean(t, img)
	if got, _, _ := cli("cat", img, "/root/.ssh/authorized_keys"); strings.Count(got, "\n") != 1 {
		t.Errorf("after a second run: %q", got)
	}
}

// TestImageInjectXFSRmapbt: the same injection into an XFS root with
// the reverse-mapping btree and reflink (newer mkfs.xfs defaults), with
// 1 KiB blocks and two AGs: xfs_repair -n (which checks every reverse
// mapping) is clean and everything reads back; a second run stays clean.
func TestImageInjectXFSRmapbt(t *testing.T) {
	img := xfsGuestImage(t, "-m", "rmapbt=1,reflink=1", "-b", "size=1024", "-d", "agcount=2")
	_, errOut, code := cli(append(xfsInjectArgs(t), img)...)
	wantCode(t, code, exitOK, errOut)
	checkXFSInjected(t, img, img)
	_, errOut, code = cli("--key", demoKeyFile, "--meta", "again=1", img)
	wantCode(t, code, exitOK, errOut)
	xfsRepairClean(t, img)
}

// TestImageInjectXFSQcow2GPT: the same injection into a qcow2 image
// whose GPT partition 1 holds the XFS root; qemu-img check is clean and
// the partition, taken out again, passes xfs_repair -n.
func TestImageInjectXFSQcow2GPT(t *testing.T) {
	fsImg := xfsGuestImage(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	must(t, os.WriteFile(raw, nil, 0o644))
	must(t, os.Truncate(raw, 320<<20))
	testtool.Run(t, "sgdisk", "-n", "1:2048:+300M", raw)
	testtool.Run(t, "dd", "if="+fsImg, "of="+raw, "bs=1M", "seek=1", "conv=sparse,notrunc", "status=none")
	q := filepath.Join(dir, "disk.qcow2")
	testtool.Run(t, "qemu-img", "convert", "-O", "qcow2", raw, q)
	_, errOut, code := cli(append(xfsInjectArgs(t), q)...)
	wantCode(t, code, exitOK, errOut)
	testtool.Run(t, "qemu-img", "check", q)
	back := filepath.Join(dir, "back.raw")
	testtool.Run(t, "qemu-img", "convert", "-O", "raw", q, back)
	part := filepath.Join(dir, "part.img")
	testtool.Run(t, "dd", "if="+back, "of="+part, "bs=1M", "skip=1", "count=300", "status=none")
	checkXFSInjected(t, q, part)
}

// XFS log record constants (xfs_log_format.h), for dirtyXFSLog.
const (
	xlogBBSize        = 512        // a log basic block
	xlogHeaderMagic   = 0xFEEDBABE // XLOG_HEADER_MAGIC_NUM
	xlogOpHeaderSize  = 12         // xlog_op_header
	xlogUnmountTrans  = 0x20       // XLOG_UNMOUNT_TRANS in oh_flags
	xlogOpHeaderFlags = 9          // offset of oh_flags
)

// xfsSBField reads a numeric field of the primary superblock with xfs_db.
func xfsSBField(t *testing.T, img, field string) int64 {
	t.Helper()
	out := string(testtool.Run(t, "xfs_db", "-r", "-c", "sb 0", "-c", "print "+field, img))
	v, ok := strings.CutPrefix(strings.TrimSpace(out), field+" = ")
	if !ok {
		t.Fatalf("xfs_db print %s: %q", field, out)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	must(t, err)
	return n
}

// dirtyXFSLog clears the unmount flag of the last log record of img, as a
// crash of the mounted filesystem leaves it. xfs_db locates the log.
func dirtyXFSLog(t *testing.T, img string) {
	t.Helper()
	logStart, agBlkLog := xfsSBField(t, img, "logstart"), xfsSBField(t, img, "agblklog")
	agBlocks, blockSize := xfsSBField(t, img, "agblocks"), xfsSBField(t, img, "blocksize")
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	defer fh.Close()
	st, err := fh.Stat()
	must(t, err)
	f, err := xfs.Open(fh, st.Size(), nil)
	must(t, err)
	ag, agbno := logStart>>agBlkLog, logStart&(1<<agBlkLog-1)
	base := (ag*agBlocks + agbno) * blockSize
	hb := make([]byte, xlogBBSize)
	for rec := f.Log().HeadBlock - 1; rec >= 0; rec-- {
		_, err := fh.ReadAt(hb, base+rec*xlogBBSize)
		must(t, err)
		if binary.BigEndian.Uint32(hb) != xlogHeaderMagic {
			continue
		}
		op := make([]byte, xlogOpHeaderSize)
		off := base + (rec+1)*xlogBBSize
		_, err = fh.ReadAt(op, off)
		must(t, err)
		op[xlogOpHeaderFlags] &^= xlogUnmountTrans
		_, err = fh.WriteAt(op, off)
		must(t, err)
		return
	}
	t.Fatal("no log record header before the head")
}

// TestImageInjectXFSRefusals: what the XFS engine cannot write safely is
// refused before any write, the image byte for byte unchanged, with a
// message naming the cause and what to do.
func TestImageInjectXFSRefusals(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		want  string // the cause and what to do, both named in the message
	}{
		{"dirty log", func(t *testing.T) string { img := xfsGuestImage(t); dirtyXFSLog(t, img); return img }, "recovery|run xfs_repair"},
		{"quota", func(t *testing.T) string {
			img := xfsGuestImage(t)
			testtool.Run(t, "xfs_db", "-x", "-c", "sb 0", "-c", "write qflags 1", img)
			return img
		}, "quota accounting|without quota options"},
		{"realtime", func(t *testing.T) string {
			rt := filepath.Join(t.TempDir(), "rt.img")
			must(t, os.WriteFile(rt, nil, 0o644))
			must(t, os.Truncate(rt, 64<<20))
			return xfsGuestImage(t, "-m", "reflink=0", "-r", "rtdev="+rt)
		}, "realtime|from inside it"},
		{"nrext64", func(t *testing.T) string { return xfsGuestImage(t, "-i", "nrext64=1") }, "nrext64|from inside it"},
		// Keys, network and metadata are written before the password
		// meets the immutable /etc/shadow: the stage drops them all.
		{"immutable shadow mid-injection", func(t *testing.T) string {
			img := xfsGuestImage(t)
			testtool.Run(t, "xfs_db", "-x", "-c", "path /etc/shadow", "-c", "write core.immutable 1", img)
			return img
		}, "immutable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := c.setup(t)
			before := fileSum(t, img)
			_, errOut, code := cli(append(xfsInjectArgs(t), img)...)
			if code == exitOK {
				t.Fatal("the injection succeeded")
			}
			for _, w := range strings.Split(c.want, "|") {
				if !strings.Contains(errOut, w) {
					t.Errorf("message does not say %q:\n%s", w, errOut)
				}
			}
			if fileSum(t, img) != before {
				t.Fatal("a refused injection changed the image")
			}
		})
	}
}
