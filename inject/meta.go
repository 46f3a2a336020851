package inject

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// MetaPath is where metadata goes, as nova writes it.
const MetaPath = "/meta.js"

func prepareMeta(meta map[string]string) *item {
	it := newItem(KindMeta, MetaPath)
	content, err := MetaJSON(meta)
	if err != nil {
		return it.fail(err)
	}
	it.replace(MetaPath, content)
	it.chmod(MetaPath, 0o644)
	it.rep.Summary = fmt.Sprintf("%d key(s)", len(meta))
	return it
}

// MetaJSON encodes meta as nova's json.dumps does, with sorted keys:
// {"a": "1", "b": "2"}, non-ASCII escaped as \uXXXX, and ends the line
// with a newline as a text file should (nova wrote none; JSON readers do
// not mind, and `cat` leaves the prompt on its own line).
// Keys and values must be valid UTF-8 (ErrInvalidMeta).
func MetaJSON(meta map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(meta))
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("%w: key %q: not valid UTF-8", ErrInvalidMeta, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		jsonString(&b, k)
		b.WriteString(": ")
		jsonString(&b, meta[k])
	}
	b.WriteString("}\n")
	return []byte(b.String()), nil
}

// jsonString writes s as an ASCII-only JSON string.
func jsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			fmt.Fprintf(b, `\u%04x`, r)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
