package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/formats/qcow2"
	"github.com/guestinject/guestinject/inject/diskimage"
)

// inspectReport is what inspect prints: the library's report, and, when
// the backing file could not be opened, what the image names and why.
type inspectReport struct {
	*diskimage.Report
	// BackingFile is the name the image gives its backing file, set when
	// that file was not opened; BackingError says why (missing, denied by
	// the backing policy, a broken chain).
	BackingFile  string `json:"backing_file,omitempty"`
	BackingError string `json:"backing_error,omitempty"`
}

// backingTrouble reports whether err is about a backing file: denied by
// the policy, a broken chain, or a file that is not there.
func backingTrouble(err error) bool {
	return errors.Is(err, formats.ErrBackingDenied) || errors.Is(err, formats.ErrBackingChain) || errors.Is(err, fs.ErrNotExist)
}

// inspectWithoutBacking describes a qcow2 image from its own header when
// opening its backing chain failed with cause. Any other image, or one
// without a backing file, returns cause unchanged.
func inspectWithoutBacking(path string, cause error) (*inspectReport, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // never block on a FIFO swapped in
	if err != nil {
		return nil, cause
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, cause
	}
	if format, err := formats.Detect(f, fi.Size()); err != nil || format != formats.FormatQcow2 {
		return nil, cause
	}
	m, err := qcow2.ReadMeta(f, fi.Size())
	if err != nil || m.BackingFile == "" {
		return nil, cause
	}
	compression := "zlib"
	if m.CompressionType == qcow2.CompressionZstd {
		compression = "zstd"
	}
	r := &diskimage.Report{
		Path: path, Format: formats.FormatQcow2, VirtualSize: int64(m.Size), FileSize: fi.Size(),
		Qcow2: &diskimage.Qcow2Report{Version: int(m.Version), ClusterSize: int(m.ClusterSize), RefcountBits: int(m.RefcountBits),
			Compression: compression, Snapshots: int(m.NbSnapshots), Features: []string{}},
		Partitions: []diskimage.PartitionReport{},
	}
	return &inspectReport{Report: r, BackingFile: m.BackingFile, BackingError: fmt.Sprint(explainOpen(path, cause))}, nil
}
