package xfs

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrentReadWrite runs readers (Stat, ReadFile, ReadDir, a File
// read in pieces) against a writer making files and appending to one on a
// batching FS: under -race the contract holds (reads in parallel, each
// write alone), every read sees whole writes, and xfs_repair -n passes
// after the flush. CI runs it with -race.
func TestConcurrentReadWrite(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "big.bin": string(bytes.Repeat([]byte("0123456789abcdef"), 1<<14))})
	img := filepath.Join(dir, "a.img")
	mkfsTree(t, img, src, 300<<20)
	f := openRW(t, img)
	f.opts.Batch = true
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
			}
		}()
	}
	for i := range 40 {
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
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	repairClean(t, img)
}
