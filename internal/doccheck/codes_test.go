// Package doccheck holds tests that keep the documentation in step with the
// code.
package doccheck

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the table of receipt codes in README.md from the code")

// codeRe is the shape of a receipt code: upper-case words joined by
// underscores (a state may have spaces: `REVOCATA IN LAVORAZIONE`), or one
// upper-case word of four letters or more.
var codeRe = regexp.MustCompile(`^[A-Z][A-Z0-9]*([_ ][A-Z0-9]+)+$|^[A-Z]{4,}$`)

// notCodes are the string constants shaped like a receipt code that are
// not one, with why. A constant shaped like a code that the scan does not
// see written into a receipt must be here, so that a code defined as a
// constant and used in a way the scan does not follow is noticed.
var notCodes = map[string]string{
	"ABCDEHLMPRST":          "codfisc: the month letters of a codice fiscale",
	"LMNPQRSTUV":            "codfisc: the omocodia letters",
	"ANPRSEC_DEV_CA_BITS":   "an environment variable",
	"ANPRSEC_SMTP_PASSWORD": "an environment variable",
	"MAIL":                  "an SMTP command",
	"RCPT":                  "an SMTP command",
	"CONSULTAZIONE":         "a profile",
	"PRODUZIONE":            "an environment (Ambiente)",
	"SCARTATO":              "a receipt line's esito, beside its code",
}

// notCodeTypes are the types whose constants are not receipt codes.
var notCodeTypes = map[string]string{
	"Op": "the console operations (lifecycle/authz.go): the Operazione column, not a receipt code",
}

// constInfo is a string constant of the code.
type constInfo struct {
	value, typ, where string
}

// srcFile is a parsed Go file of the module, with its package folder and
// its imports of the module's packages (local name -> folder).
type srcFile struct {
	dir     string
	f       *ast.File
	imports map[string]string
}

// codeScan finds the receipt codes in the module's Go sources.
type codeScan struct {
	fset   *token.FileSet
	module string
	files  []*srcFile
	consts map[string]map[string]constInfo // folder -> name -> constant
	// codeParams are the functions (by name) with a parameter named code:
	// the positions of those parameters.
	codeParams map[string][]int
	// codeFields are the struct types (by name) with a field named code or
	// Code: its position, for their literals without keys.
	codeFields map[string]int
	codes      map[string]string // code -> where first written
}

// receiptCodes returns the codes the code writes into receipts, each with
// where it is written, however it is written: a literal or a constant
// (of the package or another) passed as a parameter named code (Refuse,
// refuseRow, fileErr, ...), as the Code field of a composite literal,
// assigned to a variable code or a field Code, or returned first by a
// function whose first result is a code (named code, or (string, string,
// ...)); string(x.State) there stands for every state of package domain.
// It also returns the code-shaped constants found nowhere in those places.
func receiptCodes(t *testing.T, root string) (codes map[string]string, unused []constInfo) {
	t.Helper()
	s := &codeScan{fset: token.NewFileSet(), consts: map[string]map[string]constInfo{},
		codeParams: map[string][]int{}, codeFields: map[string]int{}, codes: map[string]string{}}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	s.module = strings.Fields(strings.SplitN(string(mod), "\n", 2)[0])[1]
	if err := s.parse(root); err != nil {
		t.Fatal(err)
	}
	for _, sf := range s.files {
		s.scanFile(sf)
	}
	var all []string
	for dir := range s.consts {
		for _, c := range s.consts[dir] {
			if _, found := s.codes[c.value]; !found && notCodes[c.value] == "" && notCodeTypes[c.typ] == "" {
				unused = append(unused, c)
			}
			all = append(all, c.value)
		}
	}
	sort.Slice(unused, func(i, j int) bool { return unused[i].where < unused[j].where })
	for v := range notCodes {
		if !contains(all, v) {
			t.Errorf("notCodes lists %q, which no constant of the code holds any more: remove it", v)
		}
	}
	return s.codes, unused
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// parse reads every non-test Go file under root, its constants and its
// functions' code parameters.
func (s *codeScan) parse(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(s.fset, p, nil, 0)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		sf := &srcFile{dir: filepath.ToSlash(rel), f: f, imports: map[string]string{}}
		for _, im := range f.Imports {
			ip, _ := strconv.Unquote(im.Path.Value)
			if !strings.HasPrefix(ip, s.module+"/") {
				continue
			}
			name := path.Base(ip)
			if im.Name != nil {
				name = im.Name.Name
			}
			sf.imports[name] = strings.TrimPrefix(ip, s.module+"/")
		}
		s.files = append(s.files, sf)
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				switch d.Tok {
				case token.CONST:
					s.addConsts(sf, d)
				case token.TYPE:
					s.addStructs(d)
				}
			case *ast.FuncDecl:
				i := 0
				for _, field := range d.Type.Params.List {
					for _, n := range field.Names {
						if n.Name == "code" {
							s.codeParams[d.Name.Name] = append(s.codeParams[d.Name.Name], i)
						}
						i++
					}
					if len(field.Names) == 0 {
						i++
					}
				}
			}
		}
		return nil
	})
}

// addConsts records the code-shaped string constants of a declaration.
func (s *codeScan) addConsts(sf *srcFile, d *ast.GenDecl) {
	for _, spec := range d.Specs {
		vs := spec.(*ast.ValueSpec)
		typ := ""
		if id, ok := vs.Type.(*ast.Ident); ok {
			typ = id.Name
		}
		for i, n := range vs.Names {
			if i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil || !codeRe.MatchString(v) {
				continue
			}
			if s.consts[sf.dir] == nil {
				s.consts[sf.dir] = map[string]constInfo{}
			}
			s.consts[sf.dir][n.Name] = constInfo{value: v, typ: typ, where: s.fset.Position(lit.Pos()).String()}
		}
	}
}

// addStructs records the struct types with a field named code or Code.
func (s *codeScan) addStructs(d *ast.GenDecl) {
	for _, spec := range d.Specs {
		ts := spec.(*ast.TypeSpec)
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			continue
		}
		i := 0
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				if n.Name == "code" || n.Name == "Code" {
					s.codeFields[ts.Name.Name] = i
				}
				i++
			}
			if len(f.Names) == 0 {
				i++
			}
		}
	}
}

// scanFile records the codes written in the code positions of a file.
func (s *codeScan) scanFile(sf *srcFile) {
	ast.Inspect(sf.f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			name := ""
			switch fn := x.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			}
			for _, i := range s.codeParams[name] {
				if i < len(x.Args) {
					s.add(sf, x.Args[i])
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := x.Key.(*ast.Ident); ok && (k.Name == "Code" || k.Name == "code") {
				s.add(sf, x.Value)
			}
		case *ast.CompositeLit:
			name := ""
			switch ty := x.Type.(type) {
			case *ast.Ident:
				name = ty.Name
			case *ast.SelectorExpr:
				name = ty.Sel.Name
			}
			if i, ok := s.codeFields[name]; ok && i < len(x.Elts) {
				if _, keyed := x.Elts[i].(*ast.KeyValueExpr); !keyed {
					s.add(sf, x.Elts[i])
				}
			}
		case *ast.AssignStmt:
			if len(x.Lhs) == len(x.Rhs) {
				for i, l := range x.Lhs {
					if isCodeName(l) {
						s.add(sf, x.Rhs[i])
					}
				}
			}
		case *ast.FuncDecl:
			if x.Body != nil && returnsCode(x.Type) {
				s.returns(sf, x.Body)
			}
		case *ast.FuncLit:
			if returnsCode(x.Type) {
				s.returns(sf, x.Body)
			}
		}
		return true
	})
}

// isCodeName reports whether an assignment's left side is a variable
// code or a field Code.
func isCodeName(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name == "code"
	case *ast.SelectorExpr:
		return x.Sel.Name == "Code"
	}
	return false
}

// returnsCode reports whether a function's first result is a receipt
// code: named code, or the first of two or more string results (a code
// and its message).
func returnsCode(ft *ast.FuncType) bool {
	if ft.Results == nil || len(ft.Results.List) == 0 {
		return false
	}
	first := ft.Results.List[0]
	if len(first.Names) > 0 && first.Names[0].Name == "code" {
		return true
	}
	var types []string
	for _, f := range ft.Results.List {
		id, _ := f.Type.(*ast.Ident)
		name := ""
		if id != nil {
			name = id.Name
		}
		for range max(1, len(f.Names)) {
			types = append(types, name)
		}
	}
	return len(types) >= 2 && types[0] == "string" && types[1] == "string"
}

// returns records the first expression of each return statement of body
// (not of the function literals inside it).
func (s *codeScan) returns(sf *srcFile, body *ast.BlockStmt) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.ReturnStmt:
			if len(x.Results) >= 2 {
				s.add(sf, x.Results[0])
			}
		}
		return true
	})
}

// add records the code(s) e stands for.
func (s *codeScan) add(sf *srcFile, e ast.Expr) {
	for _, c := range s.resolve(sf, e) {
		if _, ok := s.codes[c]; !ok {
			s.codes[c] = s.fset.Position(e.Pos()).String()
		}
	}
}

// resolve returns the codes an expression in a code position stands for:
// a code-shaped literal, a constant of the file's package or of an
// imported one, string() of either, and string(x.State) for every state
// constant of package domain.
func (s *codeScan) resolve(sf *srcFile, e ast.Expr) []string {
	switch x := e.(type) {
	case *ast.ParenExpr:
		return s.resolve(sf, x.X)
	case *ast.BasicLit:
		if v, err := strconv.Unquote(x.Value); x.Kind == token.STRING && err == nil && codeRe.MatchString(v) {
			return []string{v}
		}
	case *ast.Ident:
		if c, ok := s.consts[sf.dir][x.Name]; ok {
			return []string{c.value}
		}
	case *ast.SelectorExpr:
		if pkg, ok := x.X.(*ast.Ident); ok {
			if dir, ok := sf.imports[pkg.Name]; ok {
				if c, ok := s.consts[dir][x.Sel.Name]; ok {
					return []string{c.value}
				}
			}
		}
	case *ast.CallExpr:
		if fn, ok := x.Fun.(*ast.Ident); ok && fn.Name == "string" && len(x.Args) == 1 {
			if sel, ok := x.Args[0].(*ast.SelectorExpr); ok && sel.Sel.Name == "State" {
				var states []string
				for _, c := range s.consts["domain"] {
					if strings.HasSuffix(c.typ, "State") {
						states = append(states, c.value)
					}
				}
				return states
			}
			return s.resolve(sf, x.Args[0])
		}
	}
	return nil
}

func rulesDoc(t *testing.T, root string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(root, "docs", "rules.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

// TestEveryReceiptCodeIsDocumented: every code a receipt can carry, as the
// code writes it, is explained in docs/rules.md, so that the document an
// operator's receipt points to cannot drift from the code.
func TestEveryReceiptCodeIsDocumented(t *testing.T) {
	root := filepath.Join("..", "..")
	doc := rulesDoc(t, root)
	codes, _ := receiptCodes(t, root)
	if len(codes) < 50 {
		t.Fatalf("found only %d receipt codes: the scan is broken", len(codes))
	}
	var missing []string
	for c, where := range codes {
		if !strings.Contains(doc, "`"+c+"`") {
			missing = append(missing, c+" ("+where+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d receipt codes are not in docs/rules.md:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

// TestScanFindsCodesHoweverWritten: the scan follows the ways the code
// writes a receipt code: a literal to Refuse, a constant of the package
// (NESSUN_CERTIFICATO) or of another (cades.FirmaNonValida), the Code
// field, a code returned with its message (RINNOVO_RICHIESTO,
// VERIFICA_CONFERMATA), a code assigned (NOME_NON_VALIDO), the new state
// of a record (string(w.State): REVOCATA IN LAVORAZIONE).
func TestScanFindsCodesHoweverWritten(t *testing.T) {
	codes, _ := receiptCodes(t, filepath.Join("..", ".."))
	for _, c := range []string{"CAMPAGNA_SCONOSCIUTA", "SOSTITUZIONE_IN_CORSO", "RINNOVO_IN_CORSO", "NESSUN_CERTIFICATO",
		"IN_PUBBLICAZIONE", "FIRMA_NON_VALIDA", "FIRMATARIO_SENZA_CF", "FORMATO", "CONSEGNATA", "RINNOVO_RICHIESTO",
		"VERIFICA_CONFERMATA", "INSTALLAZIONE_REGISTRATA", "NOME_NON_VALIDO", "NON_FILE", "ERRORE_ELABORAZIONE",
		"REVOCATA IN LAVORAZIONE", "CREATA"} {
		if _, ok := codes[c]; !ok {
			t.Errorf("the scan misses %s", c)
		}
	}
	for c := range codes {
		if notCodes[c] != "" {
			t.Errorf("%s is written into a receipt (%s) but notCodes says: %s", c, codes[c], notCodes[c])
		}
	}
}

// TestEveryCodeShapedConstantIsClassified: a string constant shaped like a
// receipt code is either written into a receipt where the scan sees it,
// or listed in notCodes: a code the scan cannot follow is noticed, not
// left undocumented.
func TestEveryCodeShapedConstantIsClassified(t *testing.T) {
	_, unused := receiptCodes(t, filepath.Join("..", ".."))
	for _, c := range unused {
		t.Errorf("%s: constant %q looks like a receipt code, but the scan does not see it written into a receipt: "+
			"if it is one, write it where the scan follows (a parameter named code, a Code field, a returned code); if not, add it to notCodes", c.where, c.value)
	}
}

// README markers of the generated table of receipt codes.
const (
	tableBegin = "<!-- receipt codes: generated from the code by `go test ./internal/doccheck -run TestReadmeReceiptCodeTable -update`; do not edit -->"
	tableEnd   = "<!-- end of receipt codes -->"
)

var headingRe = regexp.MustCompile(`(?m)^#{2,4} (.+)$`)

// slug is the anchor GitHub gives a heading.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// codeTable is the README's table of receipt codes: each code, in order,
// with the sections of docs/rules.md that explain it.
func codeTable(codes map[string]string, doc string) string {
	type section struct{ title, body string }
	var sections []section
	idx := headingRe.FindAllStringSubmatchIndex(doc, -1)
	for i, m := range idx {
		end := len(doc)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		sections = append(sections, section{doc[m[2]:m[3]], doc[m[1]:end]})
	}
	var list []string
	for c := range codes {
		list = append(list, c)
	}
	sort.Strings(list)
	var b bytes.Buffer
	b.WriteString("| code | explained in docs/rules.md |\n|---|---|\n")
	for _, c := range list {
		var where []string
		for _, s := range sections {
			if strings.Contains(s.body, "`"+c+"`") {
				where = append(where, fmt.Sprintf("[%s](docs/rules.md#%s)", s.title, slug(s.title)))
			}
		}
		if len(where) == 0 {
			where = []string{"**missing**"}
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", c, strings.Join(where, ", "))
	}
	return b.String()
}

// TestReadmeReceiptCodeTable: the README's table of every receipt code is
// the one the code and docs/rules.md make, so that it cannot drift; with
// -update the test rewrites it.
func TestReadmeReceiptCodeTable(t *testing.T) {
	root := filepath.Join("..", "..")
	codes, _ := receiptCodes(t, root)
	want := codeTable(codes, rulesDoc(t, root))
	readme := filepath.Join(root, "README.md")
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i, j := strings.Index(text, tableBegin), strings.Index(text, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no table of receipt codes between %q and %q", tableBegin, tableEnd)
	}
	got := text[i+len(tableBegin)+1 : j]
	if got == want {
		return
	}
	if *update {
		text = text[:i+len(tableBegin)+1] + want + text[j:]
		if err := os.WriteFile(readme, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the table of receipt codes in README.md differs from the code; run: go test ./internal/doccheck -run TestReadmeReceiptCodeTable -update\nonly in README.md:\n%s\nonly in the code:\n%s",
		strings.Join(linesNotIn(got, want), "\n"), strings.Join(linesNotIn(want, got), "\n"))
}

// linesNotIn returns the lines of a that b does not have.
func linesNotIn(a, b string) []string {
	have := map[string]bool{}
	for _, l := range strings.Split(b, "\n") {
		have[l] = true
	}
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !have[l] {
			out = append(out, l)
		}
	}
	return out
}
