package imports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/guestinject/guestinject/formats/qcow2"
)

// Temps are the temporary files an import created (the output under its
// temporary name, spools): removed on failure, or by a signal handler
// through RemoveAll. Safe for concurrent use.
type Temps struct {
	mu    sync.Mutex
	paths []string
}

// create makes a temporary file beside path, named after it: the
// output-to-be ("import") with mode 0644 less the umask, as qemu-img and
// overlays are created; a spool 0600.
func (t *Temps) create(path, what string) (*os.File, error) {
	mode := os.FileMode(0o600)
	if what == "import" {
		mode = 0o644
	}
	var f *os.File
	var err error
	for range 100 {
		name := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%s-%08x", filepath.Base(path), what, rand.Uint32()))
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if !errors.Is(err, os.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.paths = append(t.paths, f.Name())
	t.mu.Unlock()
	return f, nil
}

// forget stops tracking p (it was renamed into place or removed).
func (t *Temps) forget(p string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, q := range t.paths {
		if q == p {
			t.paths = append(t.paths[:i], t.paths[i+1:]...)
			return
		}
	}
}

// remove deletes p and forgets it.
func (t *Temps) remove(p string) {
	os.Remove(p)
	t.forget(p)
}

// RemoveAll deletes every temporary file still tracked.
func (t *Temps) RemoveAll() {
	t.mu.Lock()
	paths := t.paths
	t.paths = nil
	t.mu.Unlock()
	for _, p := range paths {
		os.Remove(p)
	}
}

// Sparse writing: a block of zeros is never written.
const (
	chunkSize = 1 << 20
	zeroBlock = 64 << 10
)

// zeros is compared against, never written: an array in the zeroed data
// segment, not a heap allocation at start-up.
var zeros [zeroBlock]byte

// writeSparse writes the non-zero 64 KiB blocks of p at off and returns
// how many bytes it wrote.
func writeSparse(w io.WriterAt, p []byte, off int64) (int64, error) {
	var n int64
	for i := 0; i < len(p); i += zeroBlock {
		b := p[i:min(len(p), i+zeroBlock)]
		if bytes.Equal(b, zeros[:len(b)]) {
			continue
		}
		if _, err := w.WriteAt(b, off+int64(i)); err != nil {
			return n, err
		}
		n += int64(len(b))
	}
	return n, nil
}

// streamRaw copies r into f sparsely and returns the byte count, the
// bytes written, and the last 512 bytes of the stream (a fixed VHD's
// footer, if it is one).
func streamRaw(ctx context.Context, r io.Reader, f *os.File, limit int64) (size, written int64, tail []byte, err error) {
	buf := make([]byte, chunkSize)
	tail = make([]byte, 0, 512)
	for {
		if err := ctx.Err(); err != nil {
			return size, written, nil, err
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if limit >= 0 && size+int64(n) > limit {
				return size, written, nil, fmt.Errorf("the source holds more than the %d bytes of --size: %w", limit, ErrTooSmall)
			}
			w, err := writeSparse(f, buf[:n], size)
			written += w
			if err != nil {
				return size, written, nil, err
			}
			size += int64(n)
			if n >= 512 {
				tail = append(tail[:0], buf[n-512:n]...)
			} else {
				tail = append(tail, buf[:n]...)
				tail = tail[max(0, len(tail)-512):]
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return size, written, tail, nil
		}
		if rerr != nil {
			return size, written, nil, rerr
		}
	}
}

// Linux lseek whences (SEEK_DATA, SEEK_HOLE); elsewhere the seek fails
// and the whole file counts as data.
const (
	seekData = 3
	seekHole = 4
)

// span is a byte range.
type span struct{ off, n int64 }

// dataSpans lists where f (size bytes) holds data, from SEEK_DATA and
// SEEK_HOLE; the whole file when the filesystem cannot tell.
func dataSpans(f *os.File, size int64) []span {
	var out []span
	for off := int64(0); off < size; {
		d, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // no data past off
		}
		if err != nil {
			if off == 0 {
				return []span{{0, size}}
			}
			return append(out, span{off, size - off})
		}
		h, err := f.Seek(d, seekHole)
		if err != nil || h <= d {
			h = size
		}
		out = append(out, span{d, min(h, size) - d})
		off = h
	}
	return out
}

// copyDisk copies the spans of src to dst sparsely.
func copyDisk(ctx context.Context, dst io.WriterAt, src io.ReaderAt, spans []span) (int64, error) {
	buf := make([]byte, chunkSize)
	var written int64
	for _, s := range spans {
		for off := s.off; off < s.off+s.n; off += chunkSize {
			if err := ctx.Err(); err != nil {
				return written, err
			}
			b := buf[:min(chunkSize, s.off+s.n-off)]
			if n, err := src.ReadAt(b, off); n != len(b) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return written, fmt.Errorf("read %d bytes at %d: %w", len(b), off, err)
			}
			w, err := writeSparse(dst, b, off)
			written += w
			if err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// qcow2Out is a new qcow2 image being filled.
type qcow2Out struct {
	f   *os.File
	img *qcow2.Image
}

// newQcow2 writes an empty qcow2 of size bytes (rounded up to 512, as
// qemu-img does) into the empty file f and opens it for writing.
func newQcow2(f *os.File, size int64) (*qcow2Out, error) {
	size = (size + 511) &^ 511
	if err := qcow2.Create(f, qcow2.CreateOptions{Size: size, NoSync: true}); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	img, err := qcow2.Open(f, fi.Size(), qcow2.Options{Unordered: true})
	if err != nil {
		return nil, err
	}
	return &qcow2Out{f: f, img: img}, nil
}

func (q *qcow2Out) WriteAt(p []byte, off int64) (int, error) { return q.img.WriteAt(p, off) }

// finish writes the metadata and makes the file durable.
func (q *qcow2Out) finish() error {
	if err := q.img.Flush(); err != nil {
		return err
	}
	if err := q.img.Close(); err != nil {
		return err
	}
	return q.f.Sync()
}
