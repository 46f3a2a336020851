package ext

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

var (
	quotaFuzzOnce sync.Once
	quotaFuzzBase []byte
	quotaFuzzOff  [6]int64 // where each block of the user quota file lies
)

// quotaFuzzImage builds the small quota image the fuzzer damages, and
// returns where each of the user quota file's six blocks lies in it.
func quotaFuzzImage(t testing.TB) ([]byte, [6]int64) {
	quotaFuzzOnce.Do(func() {
		img := filepath.Join(t.TempDir(), "quota.img")
		testtool.Run(t, "mke2fs", "-q", "-F", "-E", "root_owner=0:0", "-N", "64", "-t", "ext4", "-b", "1024",
			"-O", "quota,^has_journal", img, "2M")
		for k := range quotaFuzzOff {
			quotaFuzzOff[k] = quotaFileOffset(t, img, layout.UsrQuotaIno, k, 1024)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		quotaFuzzBase = b
	})
	return quotaFuzzBase, quotaFuzzOff
}

// FuzzQuotaFile damages the user quota file (pairs of a 16-bit offset
// into its 6 KiB and a byte) and moves usage between ids, creates and
// removes: an operation may fail, and then must leave the image as it
// was; none may panic, hang or write outside the image.
func FuzzQuotaFile(f *testing.F) {
	base, qoff := quotaFuzzImage(f)
	f.Add(uint32(5000), []byte{})
	f.Add(uint32(70000), []byte{0x00, 0x00, 0x12})                        // magic
	f.Add(uint32(5000), []byte{0x14, 0x00, 0x40})                         // info blocks
	f.Add(uint32(70000), []byte{0x00, 0x04, 0x01})                        // root reference
	f.Add(uint32(1), []byte{0x08, 0x14, 0x00, 0x1c, 0x00, 0x00})          // data block entries, a free-list link
	f.Add(uint32(0x01020304), []byte{0x30, 0x14, 0xff, 0x18, 0x14, 0x00}) // usage
	f.Fuzz(func(t *testing.T, id uint32, damage []byte) {
		img := writeMemImage(bytes.Clone(base))
		for len(damage) >= 3 {
			off := int(binary.LittleEndian.Uint16(damage)) % (6 * layout.QuotaBlockSize)
			img[qoff[off/layout.QuotaBlockSize]+int64(off%layout.QuotaBlockSize)] = damage[2]
			damage = damage[3:]
		}
		fsys, err := Open(img, int64(len(img)), &Options{Writable: true})
		if err != nil {
			return
		}
		w := wfs{fsys}
		for _, op := range []func() error{
			func() error { return w.SetOwnership("/lost+found", uitoa(id), uitoa(id^0x5a5a)) },
			func() error { return w.ReplaceFile("/f", make([]byte, 3000)) },
			func() error { return w.SetOwnership("/f", uitoa(id+1), "") },
			func() error { return w.Remove("/lost+found") },
		} {
			before := bytes.Clone(img)
			if err := op(); err != nil && !bytes.Equal(before, img) {
				t.Fatalf("a failed operation (%v) changed the image", err)
			}
		}
	})
}

func uitoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
