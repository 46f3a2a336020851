package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// Format names.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)

// signature recognises one container by its magic bytes.
type signature struct {
	name  string
	match func(head, tail []byte, size int64) bool
}

func at(b []byte, off int, magic string) bool {
	return len(b) >= off+len(magic) && string(b[off:off+len(magic)]) == magic
}

// signatures lists the containers we recognise. All but qcow2 are refused.
var signatures = []signature{
	{FormatQcow2, func(h, _ []byte, _ int64) bool {
		return at(h, 0, "QFI\xfb") && len(h) >= 8 && binary.BigEndian.Uint32(h[4:8]) >= 2
	}},
	{"qcow (version 1)", func(h, _ []byte, _ int64) bool { return at(h, 0, "QFI\xfb") }},
	{"qed", func(h, _ []byte, _ int64) bool { return at(h, 0, "QED\x00") }},
	{"vmdk", func(h, _ []byte, _ int64) bool {
		return at(h, 0, "KDMV") || at(h, 0, "COWD") || at(h, 0, "# Disk DescriptorFile") ||
			bytes.Contains(h[:min(len(h), 1024)], []byte("# Disk DescriptorFile"))
	}},
	{"vhdx", func(h, _ []byte, _ int64) bool { return at(h, 0, "vhdxfile") }},
	{"vhd", func(h, t []byte, _ int64) bool { return at(h, 0, "conectix") || at(t, 0, "conectix") }},
	{"vdi", func(h, _ []byte, _ int64) bool {
		return len(h) >= 0x44 && binary.LittleEndian.Uint32(h[0x40:]) == 0xbeda107f
	}},
	{"parallels", func(h, _ []byte, _ int64) bool {
		return at(h, 0, "WithoutFreeSpace") || at(h, 0, "WithouFreSpacExt")
	}},
	{"bochs", func(h, _ []byte, _ int64) bool { return at(h, 0, "Bochs Virtual HD Image") }},
	{"cloop", func(h, _ []byte, _ int64) bool { return at(h, 0, "#!/bin/sh\n#V2.0 Format\n") }},
	{"luks", func(h, _ []byte, _ int64) bool { return at(h, 0, "LUKS\xba\xbe") }},
	{"dmg", func(_, t []byte, _ int64) bool { return at(t, 0, "koly") }},
	{"iso", func(h, _ []byte, _ int64) bool {
		return at(h, 0x8001, "CD001") || at(h, 0x8801, "CD001") || at(h, 0x9001, "CD001")
	}},
}

// headSize covers every magic we look for (iso's third descriptor at 0x9001).
const headSize = 0x9010

// Detect names the container format of the file r (size bytes): "qcow2",
// "raw" (nothing recognised), or the name of a format we do not support.
func Detect(r io.ReaderAt, size int64) (string, error) {
	head := make([]byte, min(size, headSize))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", diskerr.At(0, "read image head", err)
	}
	var tail []byte
	if size >= 512 {
		tail = make([]byte, 512)
		if _, err := r.ReadAt(tail, size-512); err != nil && !errors.Is(err, io.EOF) {
			return "", diskerr.At(size-512, "read image tail", err)
		}
	}
	for _, s := range signatures {
		if s.match(head, tail, size) {
			return s.name, nil
		}
	}
	return FormatRaw, nil
}

// unsupported is the error for a recognised format we cannot read.
func unsupported(path, name string) error {
	return &diskerr.Error{Path: path, What: fmt.Sprintf("%s images are not supported yet (convert with 'qemu-img convert -O qcow2')", name), Offset: -1, Err: ErrUnsupportedFormat}
}

// DetectFile names the container format of the file at path (see Detect),
// e.g. for reporting what an unsupported image is. Like Open, it opens
// only a regular file or a block device, and never blocks on a FIFO.
func DetectFile(path string) (string, error) {
	f, _, err := openImagePath(location{Path: path}, false)
	if err != nil {
		return "", err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	return Detect(f, size)
}
