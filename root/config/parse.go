package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Parse reads the configuration in data; name is where it came from (a
// path, or the boot module's name) and starts every error message. The
// error, if any, is an Errors listing every problem found: a syntax error
// alone, or all the unknown keys and mistyped values, or all the values out
// of range.
func Parse(name string, data []byte) (*Config, error) {
	if name == "" {
		name = "configuration"
	}
	c := &Config{file: name, lines: map[string]int{}}
	w := walker{c: c, present: map[string]bool{}}
	if syntax := w.walk(data); syntax {
		return nil, c.syntaxError(data)
	}
	if err := w.errs.orNil(); err != nil {
		return nil, err
	}
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(c); err != nil {
		return nil, c.decodeError(err, data)
	}
	if len(c.Partitions) != w.partitions {
		// The walk and the decoder disagree on the file's shape: a bug here,
		// but say something useful rather than validate the wrong thing.
		return nil, Errors{{File: name, Msg: "partition: cannot tell the [[partition]] tables apart; write one [[partition]] table per partition"}}
	}
	for i := range c.Partitions {
		c.Partitions[i].defaults(func(key string) bool { return w.present[fieldPath(i, key)] })
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// defaults fills in the keys the file left out.
func (p *Partition) defaults(present func(key string) bool) {
	if !present("vps") {
		p.VPs = 1
	}
	if !present("console") {
		p.Console = ConsoleCOM1
	}
	if !present("autostart") {
		p.Autostart = true
	}
	if !present("on_reboot") {
		p.OnReboot = OnRebootRestart
	}
}

// key is one key a [[partition]] table takes, and the TOML type of its value.
type key struct {
	name string
	kind unstable.Kind
}

var partitionKeys = []key{
	{"name", unstable.String},
	{"memory_mib", unstable.Integer},
	{"vps", unstable.Integer},
	{"kernel", unstable.String},
	{"kernel_format", unstable.String},
	{"initrd", unstable.String},
	{"cmdline", unstable.String},
	{"console", unstable.String},
	{"autostart", unstable.Bool},
	{"on_reboot", unstable.String},
}

func partitionKey(name string) (key, bool) {
	for _, k := range partitionKeys {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

func keyNames() string {
	s := make([]string, len(partitionKeys))
	for i, k := range partitionKeys {
		s[i] = k.name
	}
	return strings.Join(s, ", ")
}

// walker reads the file's syntax tree before it is decoded: it records the
// line of every partition and key (for errors), which keys are present (for
// defaults), and refuses unknown keys and tables and values of the wrong type.
type walker struct {
	c          *Config
	p          unstable.Parser
	errs       Errors
	present    map[string]bool
	partitions int
	seen       map[string]int // keys of the current table, to their line
}

// Where the key-values being read belong.
const (
	atTop  = -1 // before the first table header
	atSkip = -2 // inside a table already reported as wrong
)

// walk reads data; it returns true on a syntax error, which the decoder
// then reports with its position.
func (w *walker) walk(data []byte) (syntax bool) {
	w.p.Reset(data)
	cur := atTop
	for w.p.NextExpression() {
		e := w.p.Expression()
		switch e.Kind {
		case unstable.ArrayTable, unstable.Table:
			keys, line := w.keys(e.Key())
			switch {
			case e.Kind == unstable.ArrayTable && len(keys) == 1 && keys[0] == "partition":
				cur = w.newPartition(line)
			case e.Kind == unstable.Table && len(keys) == 1 && keys[0] == "partition":
				w.errorf(line, "partition", "a single table; write [[partition]] (an array of tables), one per partition")
				cur = atSkip
			case keys[0] == "partition" && w.partitions > 0:
				w.errorf(line, fieldPath(w.partitions-1, strings.Join(keys[1:], ".")), "unknown table; a partition takes the keys %s", keyNames())
				cur = atSkip
			default:
				w.errorf(line, strings.Join(keys, "."), "unknown table; the file holds [[partition]] tables")
				cur = atSkip
			}
		case unstable.KeyValue:
			switch cur {
			case atSkip:
			case atTop:
				w.topKeyValue(e)
			default:
				w.keyValue(cur, e)
			}
		}
	}
	return w.p.Error() != nil
}

// newPartition starts partition number w.partitions, whose table begins on line.
func (w *walker) newPartition(line int) int {
	i := w.partitions
	w.partitions++
	w.c.lines[fieldPath(i, "")] = line
	w.seen = map[string]int{}
	return i
}

// topKeyValue reads a key-value before any table header: only
// "partition = [{...}, ...]", an array of inline tables, belongs there.
func (w *walker) topKeyValue(e *unstable.Node) {
	keys, line := w.keys(e.Key())
	if len(keys) != 1 || keys[0] != "partition" {
		w.errorf(line, strings.Join(keys, "."), "unknown key; the file holds [[partition]] tables")
		return
	}
	v := e.Value()
	if v.Kind != unstable.Array {
		w.errorf(line, "partition", "%s; write [[partition]] tables, one per partition", kindName(v.Kind))
		return
	}
	it := v.Children()
	for it.Next() {
		t := it.Node()
		if t.Kind != unstable.InlineTable {
			w.errorf(line, "partition", "an array holding %s; each partition is a table", kindName(t.Kind))
			continue
		}
		i := w.newPartition(line)
		kv := t.Children()
		first := true
		for kv.Next() {
			if n := kv.Node(); n.Kind == unstable.KeyValue {
				if first {
					_, l := w.keys(n.Key())
					w.c.lines[fieldPath(i, "")] = l
					first = false
				}
				w.keyValue(i, n)
			}
		}
	}
}

// keyValue reads one key-value of partition i.
func (w *walker) keyValue(i int, e *unstable.Node) {
	keys, line := w.keys(e.Key())
	path := fieldPath(i, strings.Join(keys, "."))
	k, known := partitionKey(keys[0])
	switch {
	case !known:
		w.errorf(line, path, "unknown key; a partition takes %s", keyNames())
		return
	case len(keys) > 1:
		w.errorf(line, path, "%s is %s, not a table", k.name, kindName(k.kind))
		return
	}
	if first, dup := w.seen[k.name]; dup {
		w.errorf(line, path, "set twice (first on line %d)", first)
		return
	}
	w.seen[k.name] = line
	w.c.lines[path] = line
	w.present[path] = true
	if v := e.Value(); v.Kind != k.kind {
		w.errorf(line, path, "%s; want %s", kindName(v.Kind), kindName(k.kind))
	}
}

// keys returns a key's parts and the line it starts on.
func (w *walker) keys(it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = w.p.Shape(n.Raw).Start.Line
		}
		parts = append(parts, string(n.Data))
	}
	if len(parts) == 0 {
		parts = []string{""}
	}
	return parts, line
}

func (w *walker) errorf(line int, field, format string, args ...any) {
	w.errs = append(w.errs, &Error{File: w.c.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean (true or false)"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date or time"
	}
	return "a value of kind " + k.String()
}

// syntaxError is the decoder's account of a file the parser refused.
func (c *Config) syntaxError(data []byte) error {
	var scratch Config
	err := toml.Unmarshal(data, &scratch)
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return Errors{{File: c.file, Line: line, Msg: "TOML syntax: " + tomlMessage(de)}}
	}
	return Errors{{File: c.file, Msg: "TOML syntax error"}}
}

// decodeError turns what the decoder still refuses after the walk (values
// that do not fit their field, such as a negative memory size) into an
// error naming the field.
func (c *Config) decodeError(err error, data []byte) error {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return Errors{{File: c.file, Msg: "TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}}
	}
	line, _ := de.Position()
	field := ""
	if k := de.Key(); len(k) > 0 {
		last := k[len(k)-1]
		for path, l := range c.lines {
			if l == line && strings.HasSuffix(path, "."+last) {
				field = path
			}
		}
	}
	msg := tomlMessage(de)
	switch {
	case strings.HasSuffix(field, ".memory_mib"):
		msg = "out of range; " + memoryRule
	case strings.HasSuffix(field, ".vps"):
		msg = "out of range; " + vpsRule
	}
	return Errors{{File: c.file, Line: line, Field: field, Msg: msg}}
}

func tomlMessage(de *toml.DecodeError) string {
	return strings.TrimPrefix(de.Error(), "toml: ")
}
