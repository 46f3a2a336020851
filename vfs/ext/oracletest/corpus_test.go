package oracletest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guestinject/guestinject/internal/testtool"
	"github.com/guestinject/guestinject/vfs"
	"github.com/guestinject/guestinject/vfs/ext"
)

const (
	corpusDeadline   = 120 * time.Second // per image: open and whole walk (f_h_normal, 47,720 objects, takes 5 s alone and over 30 s with eight builds on two cores; a real hang still fails)
	corpusMaxObjects = 50000             // objects walked per image
	corpusMaxRead    = 16 << 20          // ReadFile cap; bigger files are sampled
)

// corpusEntry is one image of index.tsv.
type corpusEntry struct {
	name, state string
}

// corpusResult is what walking one image gave.
type corpusResult struct {
	name, state string
	openErr     error
	dirty       bool           // opened only with AllowDirtyJournal
	objects     int            // objects visited
	errs        map[string]int // per-object errors by class
	example     map[string]string
	panicked    string // panic value and stack
	hung        bool
}

func readCorpusIndex(t *testing.T, dir string) []corpusEntry {
	data, err := os.ReadFile(filepath.Join(dir, "index.tsv"))
	if err != nil {
		t.Fatalf("corpus index: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	head := strings.Split(lines[0], "\t")
	col := slices.Index(head, "clean_or_corrupt")
	var out []corpusEntry
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		e := corpusEntry{name: f[0]}
		if col >= 0 && col < len(f) {
			e.state = f[col]
		}
		out = append(out, e)
	}
	return out
}

// TestCorpusWalk opens every corpus image and walks it whole: each must
// read cleanly or fail with an error of a known class; a panic or a walk
// that outlives its deadline fails the test.
func TestCorpusWalk(t *testing.T) {
	dir := testtool.CorpusDir(t, "e2fsprogs")
	entries := readCorpusIndex(t, dir)
	results := make([]corpusResult, len(entries))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = walkCorpusImage(t, dir, e)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.panicked != "" {
			t.Errorf("%s (%s): PANIC %s", r.name, r.state, r.panicked)
		}
		if r.hung {
			t.Errorf("%s (%s): open+walk did not finish within %v", r.name, r.state, corpusDeadline)
		}
	}
	t.Log("\n" + corpusTable(results))
}

// walkCorpusImage runs one image under a deadline and recovers a panic.
func walkCorpusImage(t *testing.T, dir string, e corpusEntry) corpusResult {
	img, err := testtool.LoadCorpusImage(dir, e.name)
	if err != nil {
		t.Errorf("%s: %v", e.name, err)
		return corpusResult{name: e.name, state: e.state}
	}
	done := make(chan corpusResult, 1)
	go func() {
		r := corpusResult{name: e.name, state: e.state, errs: map[string]int{}, example: map[string]string{}}
		defer func() {
			if p := recover(); p != nil {
				r.panicked = fmt.Sprintf("%v\n%s", p, debug.Stack())
			}
			done <- r
		}()
		walkImage(img, &r)
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(corpusDeadline):
		return corpusResult{name: e.name, state: e.state, hung: true}
	}
}

func walkImage(img []byte, r *corpusResult) {
	rd := bytes.NewReader(img)
	opts := &ext.Options{MaxReadFileSize: corpusMaxRead}
	efs, err := ext.Open(rd, int64(len(img)), opts)
	if errors.Is(err, ext.ErrNeedsRecovery) {
		r.dirty = true
		opts.AllowDirtyJournal = true
		efs, err = ext.Open(rd, int64(len(img)), opts)
	}
	if err != nil {
		r.openErr = err
		return
	}
	w := walker{efs: efs, r: r, seenDirs: map[uint64]bool{}}
	w.dir("/")
}

type walker struct {
	efs      *ext.FS
	r        *corpusResult
	seenDirs map[uint64]bool
}

func (w *walker) fail(op, p string, err error) {
	c := errClass(err)
	w.r.errs[c]++
	if _, ok := w.r.example[c]; !ok {
		w.r.example[c] = fmt.Sprintf("%s %s: %v", op, p, err)
	}
}

func (w *walker) dir(p string) {
	ents, err := w.efs.ReadDir(p)
	if err != nil {
		w.fail("readdir", p, err)
		return
	}
	for _, fi := range ents {
		if w.r.objects >= corpusMaxObjects {
			return
		}
		w.r.objects++
		child := path.Join(p, fi.Name)
		w.object(child, fi)
	}
}

func (w *walker) object(p string, fi vfs.FileInfo) {
	if _, err := w.efs.Lstat(p); err != nil {
		w.fail("lstat", p, err)
	}
	if _, err := w.efs.ListXattr(p); err != nil && fi.Mode&fs.ModeSymlink == 0 {
		w.fail("listxattr", p, err)
	} else if err == nil {
		names, _ := w.efs.ListXattr(p)
		for _, n := range names {
			if _, err := w.efs.GetXattr(p, n); err != nil {
				w.fail("getxattr", p, err)
			}
		}
	}
	switch {
	case fi.IsDir():
		if fi.Ino != 0 && w.seenDirs[fi.Ino] {
			return // a directory linked twice: walk it once
		}
		w.seenDirs[fi.Ino] = true
		w.dir(p)
	case fi.Mode.IsRegular():
		w.file(p, fi)
	case fi.Mode&fs.ModeSymlink != 0:
		if _, err := w.efs.Readlink(p); err != nil {
			w.fail("readlink", p, err)
		}
		if _, err := w.efs.HasFile(p); err != nil {
			w.fail("hasfile", p, err)
		}
	}
}

func (w *walker) file(p string, fi vfs.FileInfo) {
	if fi.Size <= corpusMaxRead {
		if _, err := w.efs.ReadFile(p); err != nil {
			w.fail("read", p, err)
		}
		return
	}
	f, err := w.efs.OpenFile(p)
	if err != nil {
		w.fail("open", p, err)
		return
	}
	buf := make([]byte, 1<<20)
	for _, off := range []int64{0, f.Size() / 2, f.Size() - int64(len(buf))} {
		if _, err := f.ReadAt(buf, max(off, 0)); err != nil && err != io.EOF {
			w.fail("read", p, err)
			return
		}
	}
}

// errClass names an error by the sentinel it wraps.
func errClass(err error) string {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"not-ext", ext.ErrNotExt},
		{"needs-recovery", ext.ErrNeedsRecovery},
		{"checksum", ext.ErrChecksum},
		{"unsupported-feature", ext.ErrUnsupportedFeature},
		{"corrupt", vfs.ErrCorrupt},
		{"unsupported", vfs.ErrUnsupported},
		{"not-exist", fs.ErrNotExist},
		{"not-dir", vfs.ErrNotDir},
		{"is-dir", vfs.ErrIsDir},
		{"too-many-links", vfs.ErrTooManyLinks},
		{"invalid-path", vfs.ErrInvalidPath},
		{"no-xattr", vfs.ErrNoXattr},
		{"unexpected-eof", io.ErrUnexpectedEOF},
		{"eof", io.EOF},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return fmt.Sprintf("UNCLASSIFIED(%T)", err)
}

// corpusTable summarises the results.
func corpusTable(rs []corpusResult) string {
	var clean, withErrs, refused, bad []string
	refusedBy := map[string][]string{}
	errsBy := map[string]int{}
	imagesBy := map[string]int{}
	namesBy := map[string][]string{}
	examples := map[string]string{}
	dirty := 0
	for _, r := range rs {
		switch {
		case r.panicked != "" || r.hung:
			bad = append(bad, r.name)
		case r.openErr != nil:
			c := errClass(r.openErr)
			refused = append(refused, r.name)
			refusedBy[c] = append(refusedBy[c], r.name)
			if _, ok := examples["open "+c]; !ok {
				examples["open "+c] = r.name + ": " + r.openErr.Error()
			}
		case len(r.errs) == 0:
			clean = append(clean, r.name)
		default:
			withErrs = append(withErrs, r.name)
			for c, n := range r.errs {
				errsBy[c] += n
				imagesBy[c]++
				namesBy[c] = append(namesBy[c], r.name)
				if _, ok := examples["walk "+c]; !ok {
					examples["walk "+c] = r.name + ": " + r.example[c]
				}
			}
		}
		if r.dirty {
			dirty++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "e2fsprogs corpus: %d images\n", len(rs))
	fmt.Fprintf(&b, "  opened and walked cleanly:        %d\n", len(clean))
	fmt.Fprintf(&b, "  walked with some per-object errors: %d\n", len(withErrs))
	for _, c := range sortedKeys(errsBy) {
		fmt.Fprintf(&b, "      %-22s %5d errors in %3d images: %s\n", c, errsBy[c], imagesBy[c], strings.Join(namesBy[c], " "))
	}
	fmt.Fprintf(&b, "  refused at open:                  %d\n", len(refused))
	for _, c := range sortedKeys(refusedBy) {
		fmt.Fprintf(&b, "      %-22s %3d: %s\n", c, len(refusedBy[c]), strings.Join(refusedBy[c], " "))
	}
	fmt.Fprintf(&b, "  panicked or hung:                 %d %v\n", len(bad), bad)
	fmt.Fprintf(&b, "  (opened only with AllowDirtyJournal: %d)\n", dirty)
	fmt.Fprintf(&b, "examples:\n")
	for _, k := range sortedKeys(examples) {
		fmt.Fprintf(&b, "  %-28s %.220s\n", k, examples[k])
	}
	fmt.Fprintf(&b, "clean-state images not read cleanly:\n")
	for _, r := range rs {
		if strings.HasPrefix(r.state, "clean") && (r.openErr != nil || len(r.errs) > 0) {
			fmt.Fprintf(&b, "  %s: open %v; walk errors %v\n", r.name, r.openErr, r.errs)
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
