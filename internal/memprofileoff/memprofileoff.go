// Package memprofileoff turns the runtime's heap profiler off before any other package's
// initialiser allocates. Importing it is all it takes.
//
// The profiler samples an allocation about every 512 KiB: each sample walks the stack (reading
// the function tables) and the first one makes the profiler's hash table. Lading has no heap
// profile endpoint, so none of that is ever read, yet it cost a small `lading scan` about
// 0.8 MiB of peak RSS (go-app, 15 runs alternated: 37.2 -> 36.4 MiB), most of it from samples
// taken by other packages' initialisers, before main could turn the profiler off.
//
// Package initialisation follows import paths in sorted order among the packages whose own
// imports are done; this one imports only runtime, so it runs among the first, before the
// initialisers that allocate (TestHeapProfilerOffFirst in cmd/lading checks it). A rate given
// with GODEBUG=memprofilerate=N is kept, and `lading scan --memprofile` sets its own.
package memprofileoff

import "runtime"

// runtimeDefault is the runtime's own rate: any other was set with GODEBUG.
const runtimeDefault = 512 * 1024

func init() {
	if runtime.MemProfileRate == runtimeDefault {
		runtime.MemProfileRate = 0
	}
}
