package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/diskimage"
	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs/xfs/oracletest"
)

// BenchmarkNova1TiB is bench/qcow2.sh in process (no process start-up):
// the nova payload into a 1 TiB raw ext4 image, the same as qcow2, and a
// new overlay on that qcow2 (overlay creation included), committed as
// one jbd2 transaction; "raw-unjournaled" writes the same raw case in
// the engine's per-operation order instead (diskimage.Image.Unjournaled), for
// comparison. Each iteration starts from a fresh sparse copy, made
// outside the timing.
//
//	go test -run '^$' -bench Nova ./e2e
func BenchmarkNova1TiB(b *testing.B) { benchNova(b, 1<<40) }

// BenchmarkNova1GiB is BenchmarkNova1TiB on a 1 GiB image.
func BenchmarkNova1GiB(b *testing.B) { benchNova(b, 1<<30) }

func benchNova(b *testing.B, size int64) {
	dir := b.TempDir()
	raw := filepath.Join(dir, "pristine.raw")
	if err := os.WriteFile(raw, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(raw, size); err != nil {
		b.Fatal(err)
	}
	testtool.Run(b, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-d", "../fixtures/demo-guest", raw)
	qcow := filepath.Join(dir, "pristine.qcow2")
	testtool.Run(b, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow)
	data := benchData(b)
	for _, c := range []struct {
		name, pristine       string
		overlay, unjournaled bool
	}{{"raw", raw, false, false}, {"raw-unjournaled", raw, false, true}, {"qcow2", qcow, false, false}, {"overlay", qcow, true, false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			target := filepath.Join(dir, "t."+c.name)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				os.Remove(target)
				if !c.overlay {
					testtool.Run(b, "cp", "--sparse=always", c.pristine, target)
					syncFile(b, target) // the copy's dirty pages must not be charged to the injection's fsync
				}
				b.StartTimer()
				if err := novaOnce(c.pristine, target, c.overlay, c.unjournaled, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func syncFile(b *testing.B, p string) {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}

// novaOnce is one injection, through the overlay flow when overlay is set.
func novaOnce(base, target string, overlay, unjournaled bool, data *inject.Data) error {
	if overlay {
		if err := formats.CreateOverlay(target, base, formats.OverlayOptions{NoSync: true}); err != nil {
			return err
		}
	}
	im, err := diskimage.Open(target, diskimage.Options{Writable: true, Fresh: overlay})
	if err != nil {
		return err
	}
	im.Unjournaled = unjournaled
	_, err = inject.Apply(im.FS, data, nil)
	if cerr := im.Close(); err == nil {
		err = cerr
	}
	return err
}

// benchData is the nova payload: a key, an interface, metadata, a root
// password and three files (one of 12 KiB in new directories).
func benchData(b *testing.B) *inject.Data {
	key, err := os.ReadFile(demoKey)
	if err != nil {
		b.Fatal(err)
	}
	conf := make([]byte, 12000)
	for i := range conf {
		conf[i] = byte('a' + i%26)
	}
	return payload{motd: "Welcome.\n", notes: string(conf), hostname: "vm-1\n"}.dataFrom(string(key))
}

// BenchmarkNovaXFS is the nova payload into sparse raw XFS images of the
// demo guest (mkfs.xfs -p) of 1 GiB and 1 TiB, in process: open →
// inject → commit → fsync. Each iteration starts from a fresh sparse
// copy, made outside the timing.
//
//	go test -run '^$' -bench NovaXFS ./e2e
func BenchmarkNovaXFS(b *testing.B) {
	dir := b.TempDir()
	var proto bytes.Buffer
	if err := oracletest.WriteProtofile(&proto, "../fixtures/demo-guest"); err != nil {
		b.Fatal(err)
	}
	pf := filepath.Join(dir, "proto")
	if err := os.WriteFile(pf, proto.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	data := benchData(b)
	for _, c := range []struct {
		name string
		size int64
	}{{"1GiB", 1 << 30}, {"1TiB", 1 << 40}} {
		raw := filepath.Join(dir, "pristine-"+c.name)
		if err := os.WriteFile(raw, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Truncate(raw, c.size); err != nil {
			b.Fatal(err)
		}
		testtool.Run(b, "mkfs.xfs", "-q", "-f", "-p", pf, raw)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			target := filepath.Join(dir, "t."+c.name)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				os.Remove(target)
				testtool.Run(b, "cp", "--sparse=always", raw, target)
				syncFile(b, target)
				b.StartTimer()
				if err := novaOnce(raw, target, false, false, data); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if out, code := testtool.Output(b, "xfs_repair", "-n", "-f", target); code != 0 {
				b.Fatalf("xfs_repair -n after the injection: exit %d\n%s", code, out)
			}
		})
	}
}
