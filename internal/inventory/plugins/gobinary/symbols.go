package gobinary

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
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
// traces, so it survives `-ldflags=-s -w` (which strips the ELF symbol table only). Of the
// table it reads the header and the function-name section alone: the linker writes there,
// once each, the name of every function with a body and of every function inlined into
// another (inline trees point into it), so a vulnerable function inlined everywhere is found
// too. debug/gosym, which decodes every function's entry, lists a subset of the same names
// (TestSymbolTableMatchesGosym) at several times the memory. Tables older than Go 1.16 have
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
	names, err := readFuncNames(sec.Open(), sec.Size)
	if err != nil {
		return nil, err
	}
	// Each package's symbols, substrings of names (or of a receiver joined to its method)
	// until copied out below.
	byPkg := map[string][]string{}
	for n := range strings.SplitSeq(names, "\x00") {
		if n == "" {
			continue
		}
		if pkg, sym, ok := splitSymbol(n); ok {
			byPkg[pkg] = append(byPkg[pkg], sym)
		}
	}
	// The symbols kept are copied into one string, and listed in one slice, that every
	// package's list is part of (capped: appending to one copies it). The inventory holds
	// neither the section nor a string per symbol: a 15 MB binary keeps some 13,000 symbols
	// of an 800 KB section, in three allocations instead of a set per package and a string
	// per symbol (BenchmarkSymbolTable: 3,900 allocations instead of 9,400, a fifth less
	// memory allocated, a quarter less time).
	pkgs := slices.Sorted(maps.Keys(byPkg))
	size, count := 0, 0
	for _, pkg := range pkgs {
		syms := byPkg[pkg]
		slices.Sort(syms)
		syms = slices.Compact(syms)
		byPkg[pkg] = syms
		count += len(syms)
		for _, sym := range syms {
			size += len(sym)
		}
	}
	var text strings.Builder
	text.Grow(size)
	for _, pkg := range pkgs {
		for _, sym := range byPkg[pkg] {
			text.WriteString(sym)
		}
	}
	all, lists := text.String(), make([]string, 0, count)
	out := make(map[string][]string, len(pkgs))
	for _, pkg := range pkgs {
		first := len(lists)
		for _, sym := range byPkg[pkg] {
			lists = append(lists, all[:len(sym)])
			all = all[len(sym):]
		}
		out[strings.Clone(pkg)] = lists[first:len(lists):len(lists)]
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

// pclntabHeaderMax is the size of the longest pclntab header funcNameBounds reads: the magic
// and sizes (8 bytes) and 5 words of 8 bytes.
const pclntabHeaderMax = 8 + 5*8

// readFuncNames reads the function-name section of a pclntab of size bytes: its header, then
// the section it bounds, as one string of NUL-terminated names.
func readFuncNames(r io.ReadSeeker, size uint64) (string, error) {
	head := make([]byte, min(size, pclntabHeaderMax))
	if _, err := io.ReadFull(r, head); err != nil {
		return "", fmt.Errorf("function table: %w", err)
	}
	start, end, err := funcNameBounds(head, size)
	if err != nil {
		return "", err
	}
	if _, err := r.Seek(int64(start), io.SeekStart); err != nil {
		return "", fmt.Errorf("function table: %w", err)
	}
	var b strings.Builder
	b.Grow(int(end - start))
	if n, err := io.CopyN(&b, r, int64(end-start)); err != nil {
		return "", fmt.Errorf("function table: %d of %d bytes of function names: %w", n, end-start, err)
	}
	return b.String(), nil
}

// funcNameBounds returns the bounds of the function-name section of a pclntab of size bytes
// (Go 1.16 and later) from its header (at least its first pclntabHeaderMax bytes, or all of
// a shorter table). The header is checked here: gosym does not expose the section.
func funcNameBounds(head []byte, size uint64) (start, end uint64, err error) {
	if len(head) < 8 {
		return 0, 0, errors.New("function table: too short")
	}
	var order binary.ByteOrder = binary.LittleEndian
	magic := order.Uint32(head)
	if magic != pclntab116 && magic != pclntab118 && magic != pclntab120 {
		order = binary.BigEndian
		magic = order.Uint32(head)
	}
	ptr := int(head[7])
	if ptr != 4 && ptr != 8 {
		return 0, 0, fmt.Errorf("function table: pointer size %d", ptr)
	}
	word := func(i int) (uint64, bool) {
		off := 8 + i*ptr
		if off+ptr > len(head) {
			return 0, false
		}
		if ptr == 4 {
			return uint64(order.Uint32(head[off:])), true
		}
		return order.Uint64(head[off:]), true
	}
	// After the magic: nfunc, nfiles, (textStart from 1.18 on), funcnameOffset, cuOffset.
	first := 2
	switch magic {
	case pclntab116:
	case pclntab118, pclntab120:
		first = 3
	default:
		return 0, 0, fmt.Errorf("function table format %#x predates Go 1.16", magic)
	}
	start, ok1 := word(first)
	end, ok2 := word(first + 1)
	if !ok1 || !ok2 || start > end || end > size {
		return 0, 0, errors.New("function table: function names out of bounds")
	}
	return start, end, nil
}

// funcNames returns the names of the function-name section of a whole pclntab.
func funcNames(data []byte) ([]string, error) {
	start, end, err := funcNameBounds(data[:min(len(data), pclntabHeaderMax)], uint64(len(data)))
	if err != nil {
		return nil, err
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
	if strings.IndexByte(name, '[') < 0 {
		return splitPlainSymbol(name)
	}
	return splitSymbolGosym(name)
}

// splitSymbolGosym is splitSymbol through debug/gosym's reading of a name, which knows the
// type arguments of generic functions.
func splitSymbolGosym(name string) (pkg, sym string, ok bool) {
	s := gosym.Sym{Name: name}
	recv := withoutTypeArgs(strings.TrimSuffix(strings.TrimPrefix(s.ReceiverName(), "(*"), ")"))
	return symbolOf(s.PackageName(), recv, withoutTypeArgs(s.BaseName()))
}

// splitPlainSymbol is splitSymbolGosym for a name without type arguments (no "["), most
// names, read in one pass instead of a dozen: debug/gosym's package is what precedes the
// first dot after the last slash, its receiver what lies between that dot and the last one,
// its base name what follows the last dot (FuzzSplitPlainSymbol compares the two readings).
// The split is most of the time a Go binary's symbol table takes.
func splitPlainSymbol(name string) (pkg, sym string, ok bool) {
	// debug/gosym, as it reads a symbol table without a Go version: "go." and "type." start
	// the linker's own symbols, which belong to no package.
	if strings.HasPrefix(name, "go.") || strings.HasPrefix(name, "type.") {
		return "", "", false
	}
	pathend := max(strings.LastIndexByte(name, '/'), 0)
	rest := name[pathend:]
	first := strings.IndexByte(rest, '.')
	if first < 0 {
		return "", "", false // no package
	}
	last := strings.LastIndexByte(rest, '.')
	recv := ""
	if last != first {
		recv = strings.TrimSuffix(strings.TrimPrefix(rest[first+1:last], "(*"), ")")
	}
	return symbolOf(name[:pathend+first], recv, rest[last+1:])
}

// symbolOf is splitSymbol's answer for a name read as package, receiver (without pointer or
// type arguments) and base name.
func symbolOf(pkg, recv, base string) (string, string, bool) {
	if pkg == "" || strings.ContainsAny(pkg, ": ") || strings.HasPrefix(pkg, "vendor/") {
		return "", "", false
	}
	if base == "" || generated(base) || strings.Contains(recv, ".") || strings.ContainsAny(recv, "() -") || strings.ContainsAny(base, "() -") {
		return "", "", false
	}
	// "-": method values' wrappers ("T.M-fm"); the method itself has its own name.
	if recv == "init" || (recv == "" && base == "init") {
		return "", "", false
	}
	if strings.IndexByte(pkg, '%') >= 0 {
		if unescaped, err := url.PathUnescape(pkg); err == nil {
			pkg = unescaped // the linker escapes dots in the last element: gopkg.in/yaml%2ev2
		}
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
		if rest, ok := strings.CutPrefix(base, prefix); ok && rest != "" && allDigits(rest) {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
