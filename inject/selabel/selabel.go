// Package selabel computes SELinux file labels from a policy's
// file_contexts files, as libselinux's file backend (selabel_lookup,
// matchpathcon) does, so that a guest's objects can be labelled offline
// from the guest's own policy.
//
// The rules, as libselinux applies them: file_contexts, then
// file_contexts.homedirs, then file_contexts.local are read in that order
// into one list of specifications (a regular expression matched against
// the whole path, an optional file type, a context or <<none>>). Specs
// whose expression holds no regular-expression meta character (exact
// paths) are moved behind the others, and the list is searched from its
// end: the last matching spec wins, exact paths before expressions, and
// among expressions the later line (the policy tools sort file_contexts
// from the least to the most specific). Before the search, a path that
// begins with an alias of file_contexts.subs (then .subs_dist) at a
// component boundary is rewritten to the aliased path.
package selabel

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/guestinject/guestinject/errs"
)

// ErrPolicy: a file_contexts file cannot be used (a malformed line, an
// expression that does not compile, too many specs).
var ErrPolicy = errs.New(errs.ErrUnsupported, "unusable SELinux file_contexts")

// Limits against a hostile policy: the specs read and a line's length.
const (
	maxSpecs = 200000
	maxLine  = 64 << 10
)

// spec is one file_contexts line.
type spec struct {
	expr    string
	mode    fs.FileMode // type bits the object must have; modeAny for none
	anyType bool
	context string // "" for <<none>>
	meta    bool   // expr holds meta characters
	prefix  string // literal text every matching path begins with
	re      *regexp.Regexp
	reErr   error
	where   string // file:line, for errors
}

// Handle is a loaded policy.
type Handle struct {
	specs []*spec
	subs  [][2]string // alias, original; searched in order
}

// Source is one input file: its name (for errors) and content.
type Source struct {
	Name string
	Data []byte
}

// New loads the specs of files (file_contexts, .homedirs, .local: in that
// order, missing ones left out by the caller) and the substitutions of
// subs (file_contexts.subs, then .subs_dist).
func New(files []Source, subs []Source) (*Handle, error) {
	h := &Handle{}
	for _, f := range files {
		if err := h.parse(f); err != nil {
			return nil, err
		}
	}
	var exact, expr []*spec
	for _, s := range h.specs {
		if s.meta {
			expr = append(expr, s)
		} else {
			exact = append(exact, s)
		}
	}
	h.specs = append(expr, exact...)
	for _, f := range subs {
		pairs, err := parseSubs(f)
		if err != nil {
			return nil, err
		}
		h.subs = append(h.subs, pairs...)
	}
	return h, nil
}

func (h *Handle) parse(f Source) error {
	sc := bufio.NewScanner(bytes.NewReader(f.Data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		where := fmt.Sprintf("%s:%d", f.Name, n)
		s := &spec{expr: fields[0], where: where}
		switch len(fields) {
		case 2:
			s.anyType = true
		case 3:
			m, ok := fileTypes[fields[1]]
			if !ok {
				return fmt.Errorf("%w: %s: unknown file type %q", ErrPolicy, where, fields[1])
			}
			s.mode = m
		default:
			return fmt.Errorf("%w: %s: want PATHREGEX [TYPE] CONTEXT, got %d fields", ErrPolicy, where, len(fields))
		}
		if ctx := fields[len(fields)-1]; ctx != "<<none>>" {
			if strings.Count(ctx, ":") < 2 {
				return fmt.Errorf("%w: %s: context %q is not user:role:type[:range]", ErrPolicy, where, ctx)
			}
			s.context = ctx
		}
		s.meta, s.prefix = analyse(s.expr)
		if len(h.specs) >= maxSpecs {
			return fmt.Errorf("%w: %s: more than %d specifications", ErrPolicy, where, maxSpecs)
		}
		h.specs = append(h.specs, s)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPolicy, f.Name, err)
	}
	return nil
}

// fileTypes are file_contexts' type fields.
var fileTypes = map[string]fs.FileMode{
	"--": 0, // regular file
	"-d": fs.ModeDir,
	"-l": fs.ModeSymlink,
	"-c": fs.ModeDevice | fs.ModeCharDevice,
	"-b": fs.ModeDevice,
	"-s": fs.ModeSocket,
	"-p": fs.ModeNamedPipe,
}

// analyse reports whether expr holds regular-expression meta characters
// (an escaped character is literal) and the literal text any path it
// matches must begin with.
func analyse(expr string) (meta bool, prefix string) {
	var lit strings.Builder
	done := false
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch c {
		case '.', '^', '$', '?', '*', '+', '|', '[', '(', '{':
			if !done && (c == '?' || c == '*' || c == '{') {
				// the character before is optional or repeated
				s := lit.String()
				if len(s) > 0 {
					lit.Reset()
					lit.WriteString(s[:len(s)-1])
				}
			}
			meta, done = true, true
			continue
		case '\\':
			if i+1 < len(expr) {
				i++
				c = expr[i]
				if isWordByte(c) { // \d, \w, \s ...: a class, not a literal
					meta, done = true, true
					continue
				}
			}
		}
		if !done {
			lit.WriteByte(c)
		}
	}
	if topLevelAlternation(expr) {
		return meta, "" // "/a|/b": no common beginning
	}
	return meta, lit.String()
}

// topLevelAlternation reports a "|" outside every group and class.
func topLevelAlternation(expr string) bool {
	depth, class := 0, false
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '\\':
			i++
		case class:
			class = c != ']'
		case c == '[':
			class = true
			if i+1 < len(expr) && expr[i+1] == ']' { // "[]...]": the ] is a member
				i++
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			return true
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func parseSubs(f Source) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(bytes.NewReader(f.Data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: %s:%d: want ALIAS ORIGINAL", ErrPolicy, f.Name, n)
		}
		if len(out) >= maxSpecs {
			return nil, fmt.Errorf("%w: %s: too many substitutions", ErrPolicy, f.Name)
		}
		out = append(out, [2]string{strings.TrimRight(fields[0], "/"), fields[1]})
	}
	return out, sc.Err()
}

// substitute rewrites an aliased path prefix: the first alias (in subs
// order) that p begins with at a component boundary.
func (h *Handle) substitute(p string) string {
	for _, s := range h.subs {
		a := s[0]
		if a == "" {
			continue
		}
		if strings.HasPrefix(p, a) && (len(p) == len(a) || p[len(a)] == '/') {
			return s[1] + p[len(a):]
		}
	}
	return p
}

// Lookup returns the context for the guest path p of type typ (the type
// bits of an fs.FileMode: 0 for a regular file, fs.ModeDir, ...). ok is
// false when the policy says <<none>> or nothing matches: the object is
// left unlabelled, as setfiles leaves it.
func (h *Handle) Lookup(p string, typ fs.FileMode) (ctx string, ok bool, err error) {
	p = cleanSlashes(p)
	p = h.substitute(p)
	typ &= fs.ModeType
	for i := len(h.specs) - 1; i >= 0; i-- {
		s := h.specs[i]
		if !s.anyType && s.mode != typ {
			continue
		}
		if !strings.HasPrefix(p, s.prefix) {
			continue
		}
		if !s.meta {
			if p != s.expr && p != unescape(s.expr) {
				continue
			}
		} else {
			re, err := s.compile()
			if err != nil {
				return "", false, err
			}
			if !re.MatchString(p) {
				continue
			}
		}
		return s.context, s.context != "", nil
	}
	return "", false, nil
}

func (s *spec) compile() (*regexp.Regexp, error) {
	if s.re == nil && s.reErr == nil {
		s.re, s.reErr = regexp.Compile("^(?:" + s.expr + ")$")
		if s.reErr != nil {
			s.reErr = fmt.Errorf("%w: %s: %q: %w", ErrPolicy, s.where, s.expr, s.reErr)
		}
	}
	return s.re, s.reErr
}

// unescape drops the backslashes of an expression without meta characters.
func unescape(e string) string {
	if !strings.Contains(e, `\`) {
		return e
	}
	var b strings.Builder
	for i := 0; i < len(e); i++ {
		if e[i] == '\\' && i+1 < len(e) {
			i++
		}
		b.WriteByte(e[i])
	}
	return b.String()
}

// cleanSlashes collapses doubled slashes and drops a trailing one, as
// libselinux does before matching.
func cleanSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}
