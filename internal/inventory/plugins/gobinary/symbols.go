package gobinary

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// errNoPclntab says a binary has no Go function table where the Go linker puts it.
var errNoPclntab = errors.New("no .gopclntab section")

// symbolTable reads the names of the functions a Go ELF binary holds, grouped by package path
// and named as the Go vulnerability database names symbols ("Parse", "Tag.String").
//
// It reads the function table (pclntab), which the linker keeps for the runtime's stack
// traces, so it survives `-ldflags=-s -w` (which strips the ELF symbol table only). debug/gosym
// checks the table and lists the functions with a body of their own; functions inlined into
// every caller have none, but the table's function-name section names them too (inline
// trees point into it), so the names are read from there as well. Without that, a
// vulnerable function inlined everywhere would look absent. Tables older than Go 1.16 have
// no such section: they are an error (reachability unknown), not a partial answer.
func symbolTable(f *elf.File) (map[string][]string, error) {
	sec := f.Section(".gopclntab")
	if sec == nil {
		// Position-independent binaries linked externally keep it under another name.
		sec = f.Section(".data.rel.ro.gopclntab")
	}
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, errNoPclntab
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("function table: %w", err)
	}
	var textStart uint64
	if text := f.Section(".text"); text != nil {
		textStart = text.Addr
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, textStart))
	if err != nil {
		return nil, fmt.Errorf("function table: %w", err)
	}
	names, err := funcNames(data)
	if err != nil {
		return nil, err
	}
	for _, fn := range tab.Funcs {
		names = append(names, fn.Name)
	}
	set := map[string]map[string]struct{}{}
	for _, n := range names {
		pkg, sym, ok := splitSymbol(n)
		if !ok {
			continue
		}
		if set[pkg] == nil {
			set[pkg] = map[string]struct{}{}
		}
		set[pkg][sym] = struct{}{}
	}
	out := make(map[string][]string, len(set))
	for pkg, syms := range set {
		list := make([]string, 0, len(syms))
		for s := range syms {
			list = append(list, s)
		}
		slices.Sort(list)
		out[pkg] = list
	}
	return out, nil
}

// Magic numbers of the pclntab formats that have a function-name section (Go 1.16, 1.18, 1.20
// and later).
const (
	pclntab116 = 0xfffffffa
	pclntab118 = 0xfffffff0
	pclntab120 = 0xfffffff1
)

// funcNames returns the strings of the function-name section of a pclntab (Go 1.16 and
// later), whose header gives its bounds. The header is checked here: gosym does not expose
// the section.
func funcNames(data []byte) ([]string, error) {
	if len(data) < 8 {
		return nil, errors.New("function table: too short")
	}
	var order binary.ByteOrder = binary.LittleEndian
	magic := order.Uint32(data)
	if magic != pclntab116 && magic != pclntab118 && magic != pclntab120 {
		order = binary.BigEndian
		magic = order.Uint32(data)
	}
	ptr := int(data[7])
	if ptr != 4 && ptr != 8 {
		return nil, fmt.Errorf("function table: pointer size %d", ptr)
	}
	word := func(i int) (uint64, bool) {
		off := 8 + i*ptr
		if off+ptr > len(data) {
			return 0, false
		}
		if ptr == 4 {
			return uint64(order.Uint32(data[off:])), true
		}
		return order.Uint64(data[off:]), true
	}
	// After the magic: nfunc, nfiles, (textStart from 1.18 on), funcnameOffset, cuOffset.
	first := 2
	switch magic {
	case pclntab116:
	case pclntab118, pclntab120:
		first = 3
	default:
		return nil, fmt.Errorf("function table format %#x predates Go 1.16", magic)
	}
	start, ok1 := word(first)
	end, ok2 := word(first + 1)
	if !ok1 || !ok2 || start > end || end > uint64(len(data)) {
		return nil, errors.New("function table: function names out of bounds")
	}
	var out []string
	for n := range bytes.SplitSeq(data[start:end], []byte{0}) {
		if len(n) > 0 {
			out = append(out, string(n))
		}
	}
	return out, nil
}

// splitSymbol turns a function's linker name into its package path and its symbol as the Go
// vulnerability database writes it: the receiver without pointer or type arguments
// ("golang.org/x/text/language.(*Tag).String" -> "Tag.String"). Closures, go/defer
// wrappers, package initialisers and linker-made functions are left out: advisories never
// name them, and they are most of the names.
func splitSymbol(name string) (pkg, sym string, ok bool) {
	s := gosym.Sym{Name: name}
	pkg = s.PackageName()
	if pkg == "" || strings.ContainsAny(pkg, ": ") || strings.HasPrefix(pkg, "vendor/") {
		return "", "", false
	}
	if unescaped, err := url.PathUnescape(pkg); err == nil {
		pkg = unescaped // the linker escapes dots in the last element: gopkg.in/yaml%2ev2
	}
	base := withoutTypeArgs(s.BaseName())
	recv := strings.TrimSuffix(strings.TrimPrefix(s.ReceiverName(), "(*"), ")")
	recv = withoutTypeArgs(recv)
	if base == "" || generated(base) || strings.Contains(recv, ".") || strings.ContainsAny(recv+base, "() -") {
		return "", "", false
	}
	// "-": method values' wrappers ("T.M-fm"); the method itself has its own name.
	if recv == "init" || (recv == "" && base == "init") {
		return "", "", false
	}
	if recv != "" {
		return pkg, recv + "." + base, true
	}
	return pkg, base, true
}

// withoutTypeArgs drops the type arguments of a generic name: "Pointer[...]" -> "Pointer".
func withoutTypeArgs(s string) string {
	if i := strings.IndexByte(s, '['); i >= 0 {
		return s[:i]
	}
	return s
}

// generated reports the names the compiler makes for closures ("func1"), go and defer
// wrappers ("gowrap1", "deferwrap1") and numbered initialisers ("0" of "init.0").
func generated(base string) bool {
	for _, prefix := range []string{"func", "gowrap", "deferwrap", ""} {
		if rest, ok := strings.CutPrefix(base, prefix); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}
