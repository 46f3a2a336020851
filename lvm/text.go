package lvm

import (
	"fmt"
	"strconv"
)

// The LVM2 text metadata format, as this package reads it:
//
//	file    = { item }
//	item    = name "=" value | name "{" { item } "}"
//	value   = string | integer | "[" [ value { "," value } ] "]"
//
// Names are runs of letters, digits and "_.+-"; strings are double
// quoted with backslash escapes; "#" starts a comment to the end of the
// line. Parsing is bounded in depth, items and list lengths.

// Parser limits.
const (
	maxDepth     = 16
	maxItems     = 1 << 18
	maxListItems = 1 << 12
)

// valueKind tells a value's type.
type valueKind uint8

const (
	kindString valueKind = iota
	kindInt
	kindList
)

// value is one right-hand side.
type value struct {
	kind valueKind
	s    string
	n    int64
	list []value
}

// section is a braced block, or the whole file.
type section struct {
	name   string
	values map[string]value
	subs   []*section
}

func (s *section) sub(name string) *section {
	for _, c := range s.subs {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (s *section) str(key string) (string, bool) {
	v, ok := s.values[key]
	if !ok || v.kind != kindString {
		return "", false
	}
	return v.s, true
}

func (s *section) num(key string) (int64, bool) {
	v, ok := s.values[key]
	if !ok || v.kind != kindInt {
		return 0, false
	}
	return v.n, true
}

// parser reads one text.
type parser struct {
	b     []byte
	i     int
	line  int
	count int // items read
}

// parseText parses a whole metadata text.
func parseText(b []byte) (*section, error) {
	p := &parser{b: b, line: 1}
	root := &section{values: map[string]value{}}
	if err := p.items(root, 0); err != nil {
		return nil, err
	}
	return root, nil
}

func (p *parser) errf(format string, a ...any) error {
	return corrupt("metadata text line %d: %s", p.line, fmt.Sprintf(format, a...))
}

// skip passes blanks and comments.
func (p *parser) skip() {
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '\n':
			p.line++
			p.i++
		case c == ' ' || c == '\t' || c == '\r':
			p.i++
		case c == '#':
			for p.i < len(p.b) && p.b[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '+' || c == '-'
}

// items reads items into s until "}" (depth > 0) or the end (depth 0).
func (p *parser) items(s *section, depth int) error {
	for {
		p.skip()
		if p.i == len(p.b) {
			if depth > 0 {
				return p.errf("section %q is not closed", s.name)
			}
			return nil
		}
		if p.b[p.i] == '}' {
			if depth == 0 {
				return p.errf("unexpected }")
			}
			p.i++
			return nil
		}
		if p.count++; p.count > maxItems {
			return p.errf("more than %d items", maxItems)
		}
		start := p.i
		for p.i < len(p.b) && isNameByte(p.b[p.i]) {
			p.i++
		}
		name := string(p.b[start:p.i])
		if name == "" {
			return p.errf("unexpected %q", p.b[p.i])
		}
		p.skip()
		if p.i == len(p.b) {
			return p.errf("%q has no value", name)
		}
		switch p.b[p.i] {
		case '{':
			if depth+1 > maxDepth {
				return p.errf("sections nested deeper than %d", maxDepth)
			}
			p.i++
			c := &section{name: name, values: map[string]value{}}
			if err := p.items(c, depth+1); err != nil {
				return err
			}
			s.subs = append(s.subs, c)
		case '=':
			p.i++
			v, err := p.value(0)
			if err != nil {
				return err
			}
			s.values[name] = v
		default:
			return p.errf("%q is followed by %q, want = or {", name, p.b[p.i])
		}
	}
}

// value reads one value.
func (p *parser) value(depth int) (value, error) {
	p.skip()
	if p.i == len(p.b) {
		return value{}, p.errf("missing value")
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == '[':
		if depth+1 > maxDepth {
			return value{}, p.errf("lists nested deeper than %d", maxDepth)
		}
		p.i++
		v := value{kind: kindList}
		for {
			p.skip()
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				return v, nil
			}
			if len(v.list) > 0 {
				if p.i == len(p.b) || p.b[p.i] != ',' {
					return value{}, p.errf("list items must be separated by commas")
				}
				p.i++
			}
			if len(v.list) == maxListItems {
				return value{}, p.errf("a list of more than %d items", maxListItems)
			}
			e, err := p.value(depth + 1)
			if err != nil {
				return value{}, err
			}
			v.list = append(v.list, e)
		}
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		p.i++
		for p.i < len(p.b) && (p.b[p.i] >= '0' && p.b[p.i] <= '9' || p.b[p.i] == '.') {
			p.i++
		}
		txt := string(p.b[start:p.i])
		n, err := strconv.ParseInt(txt, 10, 64)
		if err != nil {
			if _, ferr := strconv.ParseFloat(txt, 64); ferr == nil {
				return value{kind: kindString, s: txt}, nil // a float (e.g. a version): kept as text
			}
			return value{}, p.errf("bad number %q", txt)
		}
		return value{kind: kindInt, n: n}, nil
	default:
		return value{}, p.errf("unexpected %q in a value", c)
	}
}

// str reads a double-quoted string.
func (p *parser) str() (value, error) {
	p.i++ // the opening quote
	var out []byte
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch c {
		case '"':
			return value{kind: kindString, s: string(out)}, nil
		case '\\':
			if p.i == len(p.b) {
				return value{}, p.errf("string ends in a backslash")
			}
			out = append(out, p.b[p.i])
			p.i++
		case '\n':
			p.line++
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return value{}, p.errf("unterminated string")
}
