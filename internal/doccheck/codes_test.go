// Package doccheck holds tests that keep the documentation in step with the
// code.
package doccheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// refusers are the functions whose first argument is a receipt code.
var refusers = map[string]bool{
	"Refuse": true, "deny": true, "refuse": true, "refuseRow": true, "refused": true,
	"refuseFile": true, "fileErr": true, "rowErr": true, "fail": true,
}

var codeRe = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Z]{4,}$`)

// receiptCodes returns the codes the code writes into receipts: the first
// argument of a refusal constructor, and the Code field of a composite
// literal, when it is a literal code.
func receiptCodes(t *testing.T, root string) map[string]string {
	t.Helper()
	codes := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		add := func(e ast.Expr) {
			lit, ok := e.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && codeRe.MatchString(s) {
				codes[s] = fset.Position(lit.Pos()).String()
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				name := ""
				switch fn := x.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				if refusers[name] && len(x.Args) > 0 {
					add(x.Args[0])
				}
			case *ast.KeyValueExpr:
				if k, ok := x.Key.(*ast.Ident); ok && k.Name == "Code" {
					add(x.Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

// TestEveryReceiptCodeIsDocumented: every code a receipt can carry, as the
// code writes it, is explained in docs/rules.md, so that the document an
// operator's receipt points to cannot drift from the code.
func TestEveryReceiptCodeIsDocumented(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "rules.md"))
	if err != nil {
		t.Fatal(err)
	}
	codes := receiptCodes(t, root)
	if len(codes) < 50 {
		t.Fatalf("found only %d receipt codes: the scan is broken", len(codes))
	}
	var missing []string
	for c, where := range codes {
		if !strings.Contains(string(doc), "`"+c+"`") {
			missing = append(missing, c+" ("+where+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d receipt codes are not in docs/rules.md:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}
