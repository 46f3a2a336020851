package imports

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/formats/vhd"
)

// Output formats.
const (
	FormatQcow2 = formats.FormatQcow2
	FormatRaw   = formats.FormatRaw
)

// Options say what to import and where.
type Options struct {
	Source       string // path, "-" or http(s) URL
	Output       string // the disk to create (must not exist)
	Format       string // qcow2 (default) or raw
	Checksum     string // ALGO:HEX
	ChecksumFile string // path or URL of a SHA256SUMS / *-CHECKSUM file
	Size         int64  // virtual size of the output; 0: the source's
	Disk         int    // 1-based choice of the disk in an archive; 0: the only one
	Client       *http.Client
	Stdin        io.Reader
	Progress     Progress
	// Temps collects the temporary files (for a signal handler); nil
	// makes a private set.
	Temps *Temps
}

// Result describes an import.
type Result struct {
	Source       string    `json:"source"`
	Output       string    `json:"output"`
	Format       string    `json:"format"`
	VirtualSize  int64     `json:"virtual_size"`
	SourceBytes  int64     `json:"source_bytes"`
	DataWritten  int64     `json:"data_written"`
	Layers       []string  `json:"layers,omitempty"` // compression and archive layers, outermost first
	Member       string    `json:"member,omitempty"` // the archive member imported
	SourceFormat string    `json:"source_format"`
	Spooled      bool      `json:"spooled,omitempty"` // a stream was copied to a temporary file first
	Checksum     *Checksum `json:"checksum,omitempty"`
	Seconds      float64   `json:"seconds"`
}

// Pending is an import written under a temporary name beside Output.
// Commit gives it the output name; Abort removes it.
type Pending struct {
	Result
	Temp  string // the complete, verified disk, not yet under Output
	temps *Temps
}

// Commit links the disk to its output name, failing if that exists, and
// removes the temporary name.
func (p *Pending) Commit() error {
	if err := os.Link(p.Temp, p.Output); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w (the output must be a new file)", p.Output, err)
		}
		// a filesystem without hard links: check, then rename
		if _, serr := os.Lstat(p.Output); serr == nil {
			return fmt.Errorf("%s: %w (the output must be a new file)", p.Output, os.ErrExist)
		}
		if err := os.Rename(p.Temp, p.Output); err != nil {
			return err
		}
	} else {
		os.Remove(p.Temp)
	}
	p.temps.forget(p.Temp)
	if d, err := os.Open(filepath.Dir(p.Output)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Abort removes the temporary disk.
func (p *Pending) Abort() { p.temps.remove(p.Temp) }

// importer is one run.
type importer struct {
	o      Options
	ctx    context.Context
	res    Result
	temps  *Temps
	layers int
	out    string // the output's temporary file
	// the checksum runs over the source as read
	hash hash.Hash
}

// Import reads the source once and writes the disk to a temporary file
// beside Output: complete and, when a checksum was given, verified. On
// any error every temporary file is removed and nothing is left.
func Import(ctx context.Context, o Options) (*Pending, error) {
	start := time.Now()
	if o.Format == "" {
		o.Format = FormatQcow2
	}
	if o.Format != FormatQcow2 && o.Format != FormatRaw {
		return nil, fmt.Errorf("output format %q: want qcow2 or raw: %w", o.Format, ErrUnsupported)
	}
	if _, err := os.Lstat(o.Output); err == nil {
		return nil, fmt.Errorf("%s: %w (the output must be a new file)", o.Output, os.ErrExist)
	}
	if o.Temps == nil {
		o.Temps = &Temps{}
	}
	im := &importer{o: o, ctx: ctx, temps: o.Temps, res: Result{Source: o.Source, Output: o.Output, Format: o.Format}}
	p, err := im.run()
	if err != nil {
		im.temps.RemoveAll()
		return nil, err
	}
	p.Seconds = time.Since(start).Seconds()
	return p, nil
}

func (im *importer) run() (*Pending, error) {
	src, err := openSource(im.ctx, im.o.Source, im.o.Client, im.o.Stdin)
	if err != nil {
		return nil, err
	}
	defer src.r.Close()
	want, err := im.checksum(src.name)
	if err != nil {
		return nil, err
	}
	if want != nil {
		im.hash = newHash(want.Algo)
	}
	local := src.file != nil
	var head []byte
	if local {
		head = make([]byte, 0x9010)
		n, _ := src.file.ReadAt(head, 0)
		head = head[:n]
	}
	switch {
	case local && sniff(head) == "" && want == nil:
		// an image file: read where it maps, no pass over what it skips
		err = im.fromLocal(src)
	case local && sniff(head) == "":
		// with a checksum: hash the file in one sequential pass first
		if err = im.hashLocal(src); err == nil {
			err = im.fromLocal(src)
		}
	default:
		c := &counter{r: src.r, total: src.size, hash: im.hash, progress: im.o.Progress, start: time.Now()}
		err = im.fromStream(c, src)
		if err == nil {
			// the rest of the source (an archive's tail) counts for the checksum
			_, err = io.Copy(io.Discard, c)
		}
		im.res.SourceBytes = c.n
		if im.o.Progress != nil {
			im.o.Progress(c.n, src.size, time.Since(c.start))
		}
	}
	if err != nil {
		return nil, err
	}
	if want != nil {
		want.Got = fmt.Sprintf("%x", im.hash.Sum(nil))
		im.res.Checksum = want
		if want.Got != want.Want {
			return nil, fmt.Errorf("%s: %s %s, expected %s: %w; nothing was written to %s", im.o.Source, want.Algo, want.Got, want.Want, ErrChecksum, im.o.Output)
		}
	}
	return &Pending{Result: im.res, Temp: im.out, temps: im.temps}, nil
}

// checksum resolves --checksum or --checksum-file; a checksum file is
// searched for the source's name as given, then as fetched (the last
// redirect's).
func (im *importer) checksum(fetched string) (*Checksum, error) {
	switch {
	case im.o.Checksum != "" && im.o.ChecksumFile != "":
		return nil, errors.New("give a checksum or a checksum file, not both")
	case im.o.Checksum != "":
		return ParseChecksum(im.o.Checksum)
	case im.o.ChecksumFile != "":
		b, err := fetchSmall(im.ctx, im.o.ChecksumFile, im.o.Client, MaxChecksumFile)
		if err != nil {
			return nil, fmt.Errorf("checksum file: %w", err)
		}
		name := ""
		switch {
		case isURL(im.o.Source):
			name = path.Base(strings.SplitN(im.o.Source, "?", 2)[0])
		case im.o.Source != "-":
			name = filepath.Base(im.o.Source)
		}
		c, err := FromChecksumFile(b, name)
		if err != nil && fetched != "" && fetched != name {
			c, err = FromChecksumFile(b, fetched)
		}
		if err != nil {
			return nil, fmt.Errorf("checksum file %s: %w", im.o.ChecksumFile, err)
		}
		return c, nil
	}
	return nil, nil
}

func (im *importer) hashLocal(src *source) error {
	c := &counter{r: io.NewSectionReader(src.file, 0, src.size), total: src.size, hash: im.hash, progress: im.o.Progress, start: time.Now()}
	_, err := io.Copy(io.Discard, c)
	im.res.SourceBytes = c.n
	return err
}

// fromLocal imports an uncompressed local image through formats.Open (raw,
// qcow2 with its backing chain under the default policy, vmdk with its
// extents, vhd, vhdx), read-only.
func (im *importer) fromLocal(src *source) error {
	path := im.o.Source
	opts := formats.Options{ReadOnly: true}
	if name, err := formats.DetectFile(path); err == nil && name == "iso" {
		opts.Format = FormatRaw // an ISO image is a raw disk, as in a stream
	}
	d, err := formats.Open(path, opts)
	if err != nil {
		return err
	}
	defer d.Close()
	im.res.SourceFormat = d.Info().Format
	if im.res.SourceBytes == 0 {
		im.res.SourceBytes = src.size
	}
	spans := []span{{0, d.Size()}}
	if d.Info().Format == FormatRaw {
		spans = dataSpans(src.file, d.Size())
	}
	return im.writeDisk(d, d.Size(), spans)
}

// layer records one more layer, within MaxLayers.
func (im *importer) layer(kind string) error {
	im.layers++
	if im.layers > MaxLayers {
		return fmt.Errorf("%s inside %v: %w (at most %d)", kind, im.res.Layers, ErrNesting, MaxLayers)
	}
	im.res.Layers = append(im.res.Layers, kind)
	return nil
}

// fromStream peels compression and archives off r by magic, then writes
// the disk it finds.
func (im *importer) fromStream(r io.Reader, src *source) error {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(0x9010)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return err
	}
	switch kind := sniff(head); kind {
	case KindGzip, KindBzip2, KindXz, KindZstd:
		if err := im.layer(kind); err != nil {
			return err
		}
		dr, closeFn, err := decompress(kind, br, head)
		if err != nil {
			return err
		}
		defer closeFn()
		return im.fromStream(dr, src)
	case KindTar:
		if err := im.layer(kind); err != nil {
			return err
		}
		return im.fromTar(tar.NewReader(br), src)
	case KindZip:
		if err := im.layer(kind); err != nil {
			return err
		}
		return im.fromZip(br, src)
	}
	name, err := formats.Detect(bytes.NewReader(head), int64(len(head)))
	if err != nil {
		return err
	}
	im.res.SourceFormat = name
	switch {
	case name == FormatRaw || name == "iso":
		return im.streamRawDisk(br)
	case name == FormatQcow2 || formats.ReadOnlyFormat(name):
		return im.spoolImage(br, name)
	}
	return fmt.Errorf("%s: %s images cannot be imported: %w", im.o.Source, name, ErrUnsupported)
}

// fromTar finds the disk in a tar: the one an OVF descriptor (the first
// member of an OVA) names, or the only regular file.
func (im *importer) fromTar(tr *tar.Reader, src *source) error {
	var (
		ovf      []string // disks the OVF names
		want     string   // the member to import
		files    []string // regular files, for messages (the first maxNamed)
		nfiles   int
		imported string
		first    = true
	)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg { // the reader reports old-style TypeRegA as TypeReg
			continue
		}
		name := path.Clean(h.Name)
		isFirst := first
		first = false
		if isFirst && strings.HasSuffix(strings.ToLower(name), ".ovf") {
			if ovf, err = ovfDisks(tr); err != nil {
				return err
			}
			if want, err = im.choose(ovf, "the OVF names"); err != nil {
				return err
			}
			im.res.Layers[len(im.res.Layers)-1] = "ova"
			continue
		}
		if ovf != nil {
			if name == want && imported == "" {
				im.res.Member, imported = name, name
				if err := im.fromStream(tr, src); err != nil {
					return fmt.Errorf("%s in the archive: %w", name, err)
				}
			}
			continue
		}
		if h.Size == 0 {
			continue
		}
		nfiles++
		if len(files) < maxNamed {
			files = append(files, name)
		}
		pick := nfiles == 1 && im.o.Disk <= 1 || nfiles == im.o.Disk
		if pick && imported == "" {
			im.res.Member, imported = name, name
			if err := im.fromStream(tr, src); err != nil {
				return fmt.Errorf("%s in the archive: %w", name, err)
			}
		}
	}
	switch {
	case ovf != nil && imported == "":
		return fmt.Errorf("the OVF names disk %q, which the archive does not hold: %w", want, ErrArchive)
	case ovf != nil:
		return nil
	case nfiles == 0:
		return fmt.Errorf("the tar holds no file: %w", ErrArchive)
	case im.o.Disk == 0 && nfiles > 1:
		return fmt.Errorf("the tar holds %d files (%s): %w; choose one with --disk N", nfiles, named(files, nfiles), ErrArchive)
	case imported == "":
		return fmt.Errorf("--disk %d, but the tar holds %d files (%s): %w", im.o.Disk, nfiles, named(files, nfiles), ErrArchive)
	}
	return nil
}

// maxNamed bounds the names an error lists.
const maxNamed = 20

func named(names []string, n int) string {
	s := strings.Join(names, ", ")
	if n > len(names) {
		s += fmt.Sprintf(", and %d more", n-len(names))
	}
	return s
}

// choose applies --disk to the candidates.
func (im *importer) choose(c []string, what string) (string, error) {
	switch {
	case im.o.Disk == 0 && len(c) == 1:
		return c[0], nil
	case im.o.Disk == 0:
		return "", fmt.Errorf("%s %d disks (%s): %w; choose one with --disk N", what, len(c), numbered(c), ErrArchive)
	case im.o.Disk > len(c):
		return "", fmt.Errorf("--disk %d, but %s %d disks (%s): %w", im.o.Disk, what, len(c), numbered(c), ErrArchive)
	}
	return c[im.o.Disk-1], nil
}

func numbered(c []string) string {
	var b strings.Builder
	for i, s := range c {
		if i == maxNamed {
			fmt.Fprintf(&b, ", and %d more", len(c)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d: %s", i+1, s)
	}
	return b.String()
}

// fromZip picks the disk in a zip. A zip is read from its central
// directory at the end: a local uncompressed file is read in place,
// anything else is spooled to a temporary file beside the output first
// (bounded by that disk's free space, not by memory).
func (im *importer) fromZip(r io.Reader, src *source) error {
	var ra io.ReaderAt
	var size int64
	if src.file != nil && im.layers == 1 {
		ra, size = src.file, src.size
	} else {
		f, err := im.temps.create(im.o.Output, "zip")
		if err != nil {
			return err
		}
		defer func() { f.Close(); im.temps.remove(f.Name()) }()
		n, _, _, err := streamRaw(im.ctx, r, f, -1)
		if err != nil {
			return err
		}
		if err := f.Truncate(n); err != nil {
			return err
		}
		ra, size, im.res.Spooled = f, n, true
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	var files []*zip.File
	var names []string
	for _, f := range zr.File {
		if f.Mode().IsRegular() && f.UncompressedSize64 > 0 {
			files, names = append(files, f), append(names, f.Name)
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("the zip holds no file: %w", ErrArchive)
	}
	pick, err := im.choose(names, "the zip holds")
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.Name != pick {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("zip member %s: %w", f.Name, err)
		}
		defer rc.Close()
		im.res.Member = f.Name
		if err := im.fromStream(rc, src); err != nil {
			return fmt.Errorf("%s in the zip: %w", f.Name, err)
		}
		// the member's checksum (crc32) is checked at its end
		_, err = io.Copy(io.Discard, rc)
		return err
	}
	return nil
}

// streamRawDisk writes a raw stream: straight into a raw output, or into
// a sparse spool a qcow2 output is then made from (its size is known only
// at the end of the stream). A fixed VHD's footer at the end is dropped.
func (im *importer) streamRawDisk(r io.Reader) error {
	what := "import"
	if im.o.Format == FormatQcow2 {
		what = "spool"
	}
	f, err := im.temps.create(im.o.Output, what)
	if err != nil {
		return err
	}
	limit := int64(-1)
	if im.o.Size > 0 {
		limit = im.o.Size
	}
	size, written, tail, err := streamRaw(im.ctx, r, f, limit+sign(limit)*512)
	if err != nil {
		f.Close()
		return err
	}
	if vs, ok := fixedVHDFooter(tail, size); ok {
		im.res.SourceFormat = "vhd"
		size = vs
		// the footer's sector, if written, goes with the truncation below
	}
	if im.o.Size > 0 && size > im.o.Size {
		f.Close()
		return fmt.Errorf("the source disk is %d bytes, more than --size %d: %w", size, im.o.Size, ErrTooSmall)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if im.o.Format == FormatRaw {
		im.res.DataWritten = written
		return im.finishRaw(f, size)
	}
	defer func() { f.Close(); im.temps.remove(f.Name()) }()
	im.res.Spooled = true
	return im.writeDisk(f, size, dataSpans(f, size))
}

func sign(n int64) int64 {
	if n < 0 {
		return 0
	}
	return 1
}

// fixedVHDFooter reports a fixed VHD footer (valid checksum) as the last
// sector of a stream of size bytes, and the disk size it gives.
func fixedVHDFooter(tail []byte, size int64) (int64, bool) {
	if len(tail) != vhd.FooterSize || string(tail[:8]) != vhd.FooterCookie {
		return 0, false
	}
	f := vhd.DecodeFooter(tail)
	if f.DiskType != vhd.DiskFixed || vhd.Checksum(tail, vhd.ChecksumOffset) != f.Checksum {
		return 0, false
	}
	vs := f.VirtualSize()
	if vs < 0 || vs > size-vhd.FooterSize {
		return 0, false
	}
	return vs, true
}

// spoolImage copies a stream holding a qcow2, vmdk, vhd or vhdx (formats
// that need random access) to a sparse temporary file beside the output,
// opens it with backing files and extent files refused (a stream names
// nothing beside itself), and converts it.
func (im *importer) spoolImage(r io.Reader, name string) error {
	f, err := im.temps.create(im.o.Output, "spool")
	if err != nil {
		return err
	}
	defer func() { f.Close(); im.temps.remove(f.Name()) }()
	n, _, _, err := streamRaw(im.ctx, r, f, -1)
	if err != nil {
		return err
	}
	if err := f.Truncate(n); err != nil {
		return err
	}
	im.res.Spooled = true
	var d formats.Disk
	if name == FormatQcow2 {
		img, err := formats.Open(f.Name(), formats.Options{Format: FormatQcow2, ReadOnly: true, Backing: formats.BackingDeny, NoLock: true})
		if err != nil {
			return err
		}
		d = img
	} else {
		if d, _, err = formats.OpenForeign(f, n, "", name); err != nil {
			return err
		}
	}
	defer d.Close()
	return im.writeDisk(d, d.Size(), []span{{0, d.Size()}})
}

// writeDisk writes the disk src (size bytes; data only in spans) to the
// output's temporary file in the output format.
func (im *importer) writeDisk(src io.ReaderAt, size int64, spans []span) error {
	vsize := size
	if im.o.Size > 0 {
		if im.o.Size < size {
			return fmt.Errorf("the source disk is %d bytes, more than --size %d: %w", size, im.o.Size, ErrTooSmall)
		}
		vsize = im.o.Size
	}
	f, err := im.temps.create(im.o.Output, "import")
	if err != nil {
		return err
	}
	if im.o.Format == FormatRaw {
		if im.res.DataWritten, err = copyDisk(im.ctx, f, src, spans); err != nil {
			f.Close()
			return err
		}
		if err := f.Truncate(vsize); err != nil {
			f.Close()
			return err
		}
		return im.finishRaw(f, vsize)
	}
	q, err := newQcow2(f, vsize)
	if err != nil {
		f.Close()
		return err
	}
	im.res.DataWritten, err = copyDisk(im.ctx, q, src, spans)
	if err == nil {
		err = q.finish()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	im.out, im.res.VirtualSize = f.Name(), (vsize+511)&^511
	return nil
}

// finishRaw sizes and syncs a raw output.
func (im *importer) finishRaw(f *os.File, size int64) error {
	if im.o.Size > size {
		size = im.o.Size
	}
	err := f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	im.out, im.res.VirtualSize = f.Name(), size
	return nil
}
