package formats

import (
	"fmt"
	"path/filepath"
	"testing"
)

// qcow2Variant is one way of building a qcow2 image with qemu-img.
type qcow2Variant struct {
	name  string
	opts  string
	extra []string // more convert flags (-c)
	size  int64
}

var variants = []qcow2Variant{
	{name: "v3-default", opts: "compat=1.1"},
	{name: "v2-compat0.10", opts: "compat=0.10"},
	{name: "cluster512", opts: "cluster_size=512", size: 2 << 20},
	{name: "cluster2M", opts: "cluster_size=2M"},
	{name: "refcount1", opts: "refcount_bits=1"},
	{name: "refcount2", opts: "refcount_bits=2"},
	{name: "refcount4", opts: "refcount_bits=4"},
	{name: "refcount8", opts: "refcount_bits=8"},
	{name: "refcount32", opts: "refcount_bits=32"},
	{name: "refcount64", opts: "refcount_bits=64"},
	{name: "extended-l2", opts: "extended_l2=on"},
	{name: "lazy-refcounts", opts: "lazy_refcounts=on"},
	{name: "compressed-zlib", opts: "compat=1.1", extra: []string{"-c"}},
	{name: "compressed-zlib-v2", opts: "compat=0.10", extra: []string{"-c"}},
	{name: "compressed-zstd", opts: "compression_type=zstd", extra: []string{"-c"}},
	{name: "compressed-512", opts: "cluster_size=512", extra: []string{"-c"}, size: 2 << 20},
	{name: "compressed-2M", opts: "cluster_size=2M", extra: []string{"-c"}},
	{name: "compressed-extl2", opts: "extended_l2=on", extra: []string{"-c"}},
	{name: "compressed-zstd-v3-lazy", opts: "compression_type=zstd,lazy_refcounts=on,refcount_bits=2", extra: []string{"-c"}},
	{name: "prealloc-metadata", opts: "preallocation=metadata"},
	{name: "prealloc-metadata-extl2", opts: "preallocation=metadata,extended_l2=on"},
}

// buildVariant makes a raw pattern and its qcow2 conversion; returns both paths.
func buildVariant(t testing.TB, dir string, v qcow2Variant) (raw, img string) {
	t.Helper()
	size := v.size
	if size == 0 {
		size = 9<<20 + 4096 // not a multiple of the cluster size
	}
	raw = patternRaw(t, dir, v.name+".raw", size, int64(len(v.name)))
	img = filepath.Join(dir, v.name+".qcow2")
	args := append([]string{"convert", "-f", "raw", "-O", "qcow2", "-o", v.opts}, v.extra...)
	qemuImg(t, append(args, raw, img)...)
	return raw, img
}

func TestReadVariants(t *testing.T) {
	dir := t.TempDir()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			_, img := buildVariant(t, dir, v)
			d, err := Open(img, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Info().Format != FormatQcow2 {
				t.Fatalf("format %q", d.Info().Format)
			}
			mustEqual(t, readAll(t, d), toRaw(t, img), v.name)
		})
	}
}

func TestInfo(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "i.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=16k,extended_l2=on,lazy_refcounts=on,compression_type=zstd,refcount_bits=8", img, "3G")
	qemuImg(t, "snapshot", "-c", "s", img)
	d, err := Open(img, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	i := d.Info()
	if i.Format != "qcow2" || i.VirtualSize != 3<<30 || i.ClusterSize != 16384 || i.Version != 3 ||
		i.RefcountBits != 8 || i.Compression != "zstd" || !i.ExtendedL2 || !i.LazyRefcounts || i.Snapshots != 1 {
		t.Fatalf("info %+v", i)
	}
	if got := fmt.Sprint(i.Features()); got != "[compression=zstd extended_l2 lazy_refcounts snapshots]" {
		t.Fatalf("features %s", got)
	}
	if f, err := DetectFile(img); err != nil || f != "qcow2" {
		t.Fatalf("DetectFile: %q %v", f, err)
	}
}

// TestConcurrentReads: ReadAt may be called from several goroutines (the
// io.ReaderAt contract), through a compressed image over a backing file.
func TestConcurrentReads(t *testing.T) {
	dir := t.TempDir()
	buildVariant(t, dir, qcow2Variant{name: "conc", opts: "compat=1.1", extra: []string{"-c"}, size: 4 << 20})
	top := filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", "conc.qcow2", "-F", "qcow2", top)
	qemuIO(t, top, "write -P 9 1m 100k")
	want := toRaw(t, top)
	d, err := Open(top, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			buf := make([]byte, 10_000)
			for off := int64(g * 3000); off+int64(len(buf)) <= d.Size(); off += 97_000 {
				if _, err := d.ReadAt(buf, off); err != nil {
					errs <- err
					return
				}
				if string(buf) != string(want[off:off+int64(len(buf))]) {
					errs <- fmt.Errorf("goroutine %d: mismatch at %#x", g, off)
					return
				}
			}
			errs <- nil
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
