package debian

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
)

// Control is one paragraph of a Debian control file — a binary package's
// DEBIAN/control, as `dpkg-deb -f` prints it (Debian Policy 5.1, 5.3).
// Field names are matched without regard to case, as Policy says; the
// value of a multi-line field keeps its continuation lines, each after a
// newline, without their leading blank.
type Control struct {
	names  []string          // as spelled in the file, in order
	values map[string]string // by lower-case name
}

// Get returns a field's value, "" when the paragraph has no such field.
func (c Control) Get(field string) string { return c.values[strings.ToLower(field)] }

// Has reports whether the paragraph has the field.
func (c Control) Has(field string) bool {
	_, ok := c.values[strings.ToLower(field)]
	return ok
}

// Fields returns the field names in file order, spelled as in the file.
func (c Control) Fields() []string { return append([]string(nil), c.names...) }

// ParseControl parses the first paragraph of a control file. Comment lines
// ("#" in column one) are skipped; a paragraph without a Package field,
// a field without a colon, a continuation line before any field and a field
// given twice are errors naming the line.
func ParseControl(text string) (Control, error) {
	c := Control{values: map[string]string{}}
	last := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			if len(c.names) > 0 {
				return c.check()
			}
			continue // blank lines before the paragraph
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return Control{}, fmt.Errorf("control: line %d: continuation line before any field", n)
			}
			c.values[last] += "\n" + line[1:]
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return Control{}, fmt.Errorf("control: line %d: %q is not a field (name: value)", n, line)
		}
		key := strings.ToLower(name)
		if _, dup := c.values[key]; dup {
			return Control{}, fmt.Errorf("control: line %d: field %s given twice", n, name)
		}
		c.names = append(c.names, name)
		c.values[key] = strings.TrimSpace(value)
		last = key
	}
	if err := sc.Err(); err != nil {
		return Control{}, fmt.Errorf("control: %w", err)
	}
	return c.check()
}

func (c Control) check() (Control, error) {
	if len(c.names) == 0 {
		return Control{}, errors.New("control: no fields")
	}
	if c.Get("Package") == "" {
		return Control{}, errors.New("control: no Package field")
	}
	return c, nil
}

// Relation is one package named in a relationship field such as Depends
// (Debian Policy 7.1): "name[:arch] [(op version)]".
type Relation struct {
	Name    string
	Arch    string // after a colon in the name ("any", "amd64"); usually ""
	Op      string // "", "<<", "<=", "=", ">=", ">>"
	Version string // with Op
}

func (r Relation) String() string {
	s := r.Name
	if r.Arch != "" {
		s += ":" + r.Arch
	}
	if r.Op != "" {
		s += " (" + r.Op + " " + r.Version + ")"
	}
	return s
}

// Spec is the package as apt-get names it on its command line: "name" or,
// for an exact version, "name=version".
func (r Relation) Spec() string {
	if r.Op == "=" {
		return r.Name + "=" + r.Version
	}
	return r.Name
}

// ParseRelations parses a relationship field's value into its groups:
// the field is satisfied when every group is, and a group when any one of
// its alternatives is ("a | b, c" is [[a b] [c]]). Architecture lists
// ("[amd64]") and build profiles ("<!nocheck>") belong to source packages
// and are refused.
func ParseRelations(value string) ([][]Relation, error) {
	var groups [][]Relation
	value = strings.ReplaceAll(value, "\n", " ")
	if strings.TrimSpace(value) == "" {
		return nil, nil
	}
	for _, g := range strings.Split(value, ",") {
		var group []Relation
		for _, alt := range strings.Split(g, "|") {
			r, err := parseRelation(strings.TrimSpace(alt))
			if err != nil {
				return nil, err
			}
			group = append(group, r)
		}
		groups = append(groups, group)
	}
	return groups, nil
}

var relationOps = []string{"<<", "<=", ">=", ">>", "="} // longest first

func parseRelation(s string) (Relation, error) {
	if s == "" {
		return Relation{}, errors.New("relation: empty package name")
	}
	var r Relation
	name, rest, hasVersion := strings.Cut(s, "(")
	name = strings.TrimSpace(name)
	if strings.ContainsAny(name, "[<") || strings.ContainsAny(afterParen(rest), "[<") {
		return Relation{}, fmt.Errorf("relation %q: architecture lists and build profiles are for source packages", s)
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name, r.Arch = name[:i], name[i+1:]
	}
	if !validPackageName(name) {
		return Relation{}, fmt.Errorf("relation %q: %q is not a package name", s, name)
	}
	r.Name = name
	if !hasVersion {
		return r, nil
	}
	inner, tail, ok := strings.Cut(rest, ")")
	if !ok || strings.TrimSpace(tail) != "" {
		return Relation{}, fmt.Errorf("relation %q: unbalanced version restriction", s)
	}
	inner = strings.TrimSpace(inner)
	for _, op := range relationOps {
		if strings.HasPrefix(inner, op) {
			r.Op, r.Version = op, strings.TrimSpace(inner[len(op):])
			break
		}
	}
	if r.Op == "" || r.Version == "" || strings.ContainsAny(r.Version, " \t") {
		return Relation{}, fmt.Errorf("relation %q: version restriction is not (op version)", s)
	}
	return r, nil
}

// afterParen is what follows the version restriction's ")".
func afterParen(s string) string {
	_, tail, _ := strings.Cut(s, ")")
	return tail
}

// validPackageName: Debian Policy 5.6.1 — lower-case letters, digits, "+",
// "-" and ".", at least two characters, starting with a letter or digit.
func validPackageName(n string) bool {
	if len(n) < 2 {
		return false
	}
	for i, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '+' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// KernelImage finds, in the Depends of a kernel metapackage such as
// linux-image-amd64, the versioned kernel image package it stands for —
// linux-image-<release> or linux-image-<release>-unsigned, where the
// release (what `uname -r` prints, and the name of /boot/vmlinuz-<release>
// and lib/modules/<release>) starts with a digit — and returns it with the
// release. The first such package in the field wins; alternatives count.
func KernelImage(meta Control) (pkg Relation, release string, err error) {
	groups, err := ParseRelations(meta.Get("Depends"))
	if err != nil {
		return Relation{}, "", fmt.Errorf("%s: Depends: %w", meta.Get("Package"), err)
	}
	for _, g := range groups {
		for _, r := range g {
			if rel, ok := kernelRelease(r.Name); ok {
				return r, rel, nil
			}
		}
	}
	return Relation{}, "", fmt.Errorf("%s %s: Depends (%q) names no linux-image-<release> package",
		meta.Get("Package"), meta.Get("Version"), meta.Get("Depends"))
}

// kernelRelease returns the release a kernel image package carries:
// linux-image-6.1.0-57-amd64 and linux-image-6.1.0-57-amd64-unsigned carry
// 6.1.0-57-amd64; linux-image-amd64 (a metapackage) and the -dbg packages
// carry none.
func kernelRelease(name string) (string, bool) {
	rel, ok := strings.CutPrefix(name, "linux-image-")
	if !ok || rel == "" || rel[0] < '0' || rel[0] > '9' || strings.HasSuffix(rel, "-dbg") {
		return "", false
	}
	return strings.TrimSuffix(rel, "-unsigned"), true
}
