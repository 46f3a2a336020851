package ext

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// TestConcurrentReadWrite runs readers (Stat, ReadFile, ReadDir, a File
// read in pieces, Info) against a writer making files and appending to
// one, on one FS: the documented contract (reads in parallel, each write
// alone) holds under -race, every read sees a whole write, and e2fsck
// passes afterwards. CI runs it with -race.
func TestConcurrentReadWrite(t *testing.T) {
	img := mkfs(t, srcTree(t, 20), 32)
	f := openW(t, img).FS
	if err := f.MakePath("/grow"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.Stat("/etc/passwd"); err != nil {
					errs <- fmt.Errorf("reader %d: stat: %w", r, err)
					return
				}
				if _, err := f.ReadDir("/grow"); err != nil {
					errs <- fmt.Errorf("reader %d: readdir: %w", r, err)
					return
				}
				if b, err := f.ReadFile("/grow/log"); err == nil && len(b)%8 != 0 {
					errs <- fmt.Errorf("reader %d: /grow/log has %d bytes, a torn append", r, len(b))
					return
				}
				if fl, err := f.OpenFile("/big.bin"); err == nil {
					buf := make([]byte, 4096)
					if _, err := fl.ReadAt(buf, int64(i%64)*4096); err != nil {
						errs <- fmt.Errorf("reader %d: big.bin: %w", r, err)
						return
					}
				}
				_ = f.Info()
			}
		}()
	}
	for i := range 60 {
		if err := f.ReplaceFile(fmt.Sprintf("/grow/f%03d", i), bytes.Repeat([]byte{byte(i)}, 1000+i*97)); err != nil {
			t.Fatal(err)
		}
		if err := f.AppendFile("/grow/log", []byte(fmt.Sprintf("%07d\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	fsck(t, img)
}

// TestConcurrentJournalCommitGrow runs JournalCommit (as the stage calls
// it, at the end of an injection) against Grow on one FS: the documented
// contract (JournalCommit holds opMu for reading) keeps Grow's reload of
// the superblock from racing its reads; CI runs it with -race. Before the
// grow it has nothing to commit; after, it refuses a grown filesystem.
func TestConcurrentJournalCommitGrow(t *testing.T) {
	img := mkfs(t, "", 32, "-t", "ext4")
	if err := os.Truncate(img, 48<<20); err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := Open(fh, 48<<20, &Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := f.JournalCommit(fh, nil, time.Now()); err != nil && !errors.Is(err, ErrNotJournaled) {
				done <- err
				return
			}
		}
	}()
	rep, err := f.Grow(48 << 20)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("JournalCommit during Grow: %v", err)
	}
	if _, err := f.JournalCommit(fh, [][2]int64{{1024, 2048}}, time.Now()); !errors.Is(err, ErrNotJournaled) {
		t.Fatalf("JournalCommit after growing to %d blocks: %v, want ErrNotJournaled", rep.NewBlocks, err)
	}
}
