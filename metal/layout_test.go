package metal

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestUnsafeOnlyInUnsafeFiles keeps package unsafe, in metal and its
// subpackages, to files whose name says so (*_unsafe.go, *_unsafe_test.go),
// so a reviewer knows where memory is reinterpreted. Machine addresses
// elsewhere go through x86.Ptr.
func TestUnsafeOnlyInUnsafeFiles(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".go"), "_test")
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "unsafe" && !strings.HasSuffix(name, "_unsafe") {
				t.Errorf("%s imports unsafe; move that code to a *_unsafe.go file", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
