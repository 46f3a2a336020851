package imports

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guestinject/guestinject/internal/testtool"
)

// server serves the file at /disk.raw.gz, a redirect to it at /r, a 404
// at /missing, and at /drop the same file cut off half-way (the
// connection closed after half the announced Content-Length).
func server(t *testing.T, file string) *httptest.Server {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/disk.raw.gz", func(w http.ResponseWriter, r *http.Request) { w.Write(b) })
	mux.HandleFunc("/r", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/disk.raw.gz", http.StatusFound) })
	mux.HandleFunc("/SHA256SUMS", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(sha(t, file) + "  disk.raw.gz\n"))
	})
	mux.HandleFunc("/drop", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// TestHTTPImport: a URL (also through a redirect, with the checksum file
// fetched from the server) imports identical to its source; a 404 and a
// transfer dropped mid-way fail with ErrFetch and leave nothing behind.
func TestHTTPImport(t *testing.T) {
	dir := t.TempDir()
	raw := testtool.OddRaw(t, dir, 4<<20, 12)
	gz := compress(t, raw, "gzip")
	srv := server(t, gz)
	for _, path := range []string{"/disk.raw.gz", "/r"} {
		out := filepath.Join(t.TempDir(), "o.qcow2")
		p, err := run(t, Options{Source: srv.URL + path, Output: out, ChecksumFile: srv.URL + "/SHA256SUMS"})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		sameDisk(t, raw, "raw", out)
		if p.Checksum == nil || p.SourceBytes != fileSize(t, gz) {
			t.Errorf("%s: checksum %+v, %d source bytes", path, p.Checksum, p.SourceBytes)
		}
	}
	for _, path := range []string{"/missing", "/drop"} {
		outDir := t.TempDir()
		_, err := run(t, Options{Source: srv.URL + path, Output: filepath.Join(outDir, "o.qcow2")})
		if !errors.Is(err, ErrFetch) {
			t.Fatalf("%s: %v, want ErrFetch", path, err)
		}
		if path == "/missing" && !strings.Contains(err.Error(), "404") {
			t.Errorf("404 not named: %v", err)
		}
		onlyFiles(t, outDir)
	}
}

func fileSize(t testing.TB, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestInterruptLeavesNothing: an import cancelled mid-transfer (the
// server stalls after half the file; the context is cancelled as an
// interrupt would) fails and leaves neither output nor temporary file.
func TestInterruptLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	raw := testtool.OddRaw(t, dir, 4<<20, 13)
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		close(sent)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-sent; time.Sleep(100 * time.Millisecond); cancel() }()
	outDir := t.TempDir()
	_, err = Import(ctx, Options{Source: srv.URL + "/d.raw", Output: filepath.Join(outDir, "o.qcow2")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled import: %v, want context.Canceled", err)
	}
	onlyFiles(t, outDir)
}
