package imports

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// MaxLayers bounds nested compression and archive layers.
const MaxLayers = 6

// Layer kinds recognised by magic.
const (
	KindGzip  = "gzip"
	KindBzip2 = "bzip2"
	KindXz    = "xz"
	KindZstd  = "zstd"
	KindTar   = "tar"
	KindZip   = "zip"
)

// sniff names the compression or archive whose magic starts head, or "".
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return KindGzip
	case bytes.HasPrefix(head, []byte("BZh")) && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		return KindBzip2
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return KindXz
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return KindZstd
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return KindZip
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return KindTar
	}
	return ""
}

// Decoder bounds: a decompressor may hold this much history.
const (
	maxZstdWindow = 32 << 20
	maxXzDict     = 64 << 20 // what xz -9 asks; xz -6 (the default) uses 8 MiB
)

// xzDict returns the LZMA2 dictionary size the first block of the xz
// stream starting head asks for (0 when head is too short to tell). The
// xz package allocates whatever a block header asks, so a header asking
// gigabytes is refused here; later blocks of a multi-block stream are not
// seen (a known limit).
func xzDict(head []byte) (int64, error) {
	const streamHeader = 12
	if len(head) < streamHeader+2 {
		return 0, nil
	}
	b := head[streamHeader:]
	size := (int(b[0]) + 1) * 4
	if b[0] == 0 || len(b) < size {
		return 0, nil // an index first (empty stream), or a header we cannot see
	}
	flags := b[1]
	i := 2
	uvarint := func() (uint64, bool) {
		var v uint64
		for s := 0; i < size && s < 63; s += 7 {
			c := b[i]
			i++
			v |= uint64(c&0x7f) << s
			if c&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	if flags&0x40 != 0 {
		if _, ok := uvarint(); !ok {
			return 0, fmt.Errorf("xz: block header: %w", ErrUnsupported)
		}
	}
	if flags&0x80 != 0 {
		if _, ok := uvarint(); !ok {
			return 0, fmt.Errorf("xz: block header: %w", ErrUnsupported)
		}
	}
	var dict int64
	for f := 0; f <= int(flags&3); f++ {
		id, ok1 := uvarint()
		np, ok2 := uvarint()
		if !ok1 || !ok2 || np > uint64(size-i) {
			return 0, fmt.Errorf("xz: block header filter flags: %w", ErrUnsupported)
		}
		if id == 0x21 && np == 1 {
			c := b[i]
			if c > 40 {
				return 0, fmt.Errorf("xz: LZMA2 dictionary code %d: %w", c, ErrUnsupported)
			}
			dict = int64(2|c&1) << (c/2 + 11)
		}
		i += int(np)
	}
	return dict, nil
}

// decompress wraps r in the decoder for kind. The decoders keep bounded
// state: zstd's window and xz's dictionary (of the first block: see
// xzDict) are capped, a stream asking for more is refused; gzip and bzip2
// need little by construction.
func decompress(kind string, r io.Reader, head []byte) (io.Reader, func(), error) {
	if kind == KindXz {
		d, err := xzDict(head)
		if err != nil {
			return nil, nil, err
		}
		if d > maxXzDict {
			return nil, nil, fmt.Errorf("xz: a %d MiB dictionary (more than %d MiB): %w", d>>20, maxXzDict>>20, ErrUnsupported)
		}
	}
	switch kind {
	case KindGzip:
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		z.Multistream(true)
		return z, func() { z.Close() }, nil
	case KindBzip2:
		return bzip2.NewReader(r), func() {}, nil
	case KindXz:
		c := xz.ReaderConfig{SingleStream: false}
		x, err := c.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("xz: %w", err)
		}
		return &dictCheck{x}, func() {}, nil
	case KindZstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return d, d.Close, nil
	}
	return nil, nil, fmt.Errorf("no decoder for %q", kind)
}

// dictCheck names xz errors.
type dictCheck struct{ r io.Reader }

func (d *dictCheck) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("xz: %w", err)
	}
	return n, err
}
