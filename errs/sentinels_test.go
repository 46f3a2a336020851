package errs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// unclassed are the exported sentinels that wrap no class on purpose,
// with the reason.
var unclassed = map[string]string{
	"imports.ErrFetch":  "a failed transfer is an I/O failure of the source, like a host read error: no class",
	"errs.ErrForceable": "a property beside a class, not a sentinel of a layer",
}

// TestEverySentinelHasAClass reads the module's sources: every exported
// package-level Err variable is built with errs.New or errs.NewForceable,
// wraps another error with %w, or names another sentinel — never a bare
// errors.New or a fmt.Errorf without %w, which would be an error the CLI
// cannot classify.
func TestEverySentinelHasAClass(t *testing.T) {
	root := filepath.Join("..")
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "fixtures") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Err") || !name.IsExported() || i >= len(vs.Values) {
						continue
					}
					n++
					full := f.Name.Name + "." + name.Name
					if why := classless(vs.Values[i]); why != "" && unclassed[full] == "" {
						t.Errorf("%s: %s is %s: build it with errs.New(class, msg)", p, full, why)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 90 {
		t.Errorf("only %d exported sentinels found: the walk missed the module", n)
	}
}

// classless says why the expression builds an error with no class, or "".
func classless(e ast.Expr) string {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return "" // another sentinel, an alias
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	pkg, _ := sel.X.(*ast.Ident)
	switch {
	case pkg != nil && pkg.Name == "errors" && sel.Sel.Name == "New":
		return "a bare errors.New"
	case pkg != nil && pkg.Name == "fmt" && sel.Sel.Name == "Errorf":
		if len(call.Args) > 0 {
			if lit, ok := call.Args[0].(*ast.BasicLit); ok {
				if s, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(s, "%w") {
					return ""
				}
			}
		}
		return "a fmt.Errorf wrapping nothing"
	}
	return ""
}
