package imports

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// source is what SOURCE names, opened for one sequential pass.
type source struct {
	r    io.ReadCloser
	name string   // base name, for checksum files ("" for stdin)
	size int64    // bytes, -1 when unknown
	file *os.File // a local regular file (random access possible)
	url  string
}

// isURL reports an http(s) SOURCE.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// openSource opens a local path, "-" (stdin) or an http(s) URL. A URL
// answering 4xx or 5xx (after redirects) is ErrFetch.
func openSource(ctx context.Context, src string, client *http.Client, stdin io.Reader) (*source, error) {
	switch {
	case src == "-":
		if stdin == nil {
			stdin = os.Stdin
		}
		return &source{r: io.NopCloser(stdin), size: -1}, nil
	case isURL(src):
		return openURL(ctx, src, client)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v): %w", src, fi.Mode().Type(), ErrUnsupported)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	return &source{r: f, name: filepath.Base(src), size: fi.Size(), file: f}, nil
}

func openURL(ctx context.Context, src string, client *http.Client) (*source, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w: %w", src, ErrFetch, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %w: %s", src, ErrFetch, resp.Status)
	}
	name := ""
	if u, err := url.Parse(resp.Request.URL.String()); err == nil {
		name = path.Base(u.Path)
	}
	if name == "/" || name == "." {
		name = ""
	}
	return &source{r: &fetchBody{resp.Body, src}, name: name, size: resp.ContentLength, url: src}, nil
}

// fetchBody marks a transfer error (a connection cut, a body shorter than
// its Content-Length) as ErrFetch.
type fetchBody struct {
	io.ReadCloser
	url string
}

func (b *fetchBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("GET %s: %w: %w", b.url, ErrFetch, err)
	}
	return n, err
}

// fetchSmall reads a small file (a checksum file): a path or a URL, at
// most limit bytes.
func fetchSmall(ctx context.Context, src string, client *http.Client, limit int64) ([]byte, error) {
	s, err := openSource(ctx, src, client, nil)
	if err != nil {
		return nil, err
	}
	defer s.r.Close()
	b, err := io.ReadAll(io.LimitReader(s.r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", src, limit)
	}
	return b, nil
}

// Progress is told how far the source has been read (total -1 when the
// size is unknown).
type Progress func(done, total int64, elapsed time.Duration)

// counter counts the bytes read from the source, feeds the checksum and
// reports progress at most every interval.
type counter struct {
	r        io.Reader
	n, total int64
	hash     io.Writer
	progress Progress
	start    time.Time
	last     time.Time
}

const progressInterval = 250 * time.Millisecond

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		if c.hash != nil {
			c.hash.Write(p[:n])
		}
		if c.progress != nil {
			if now := time.Now(); now.Sub(c.last) >= progressInterval {
				c.last = now
				c.progress(c.n, c.total, now.Sub(c.start))
			}
		}
	}
	return n, err
}
