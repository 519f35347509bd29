package store

import (
	"errors"
	"net"
	"strings"
)

// Unavailable reports whether err says the metadata database could not be reached or went
// away (refused connections, a connection cut, a server shutting down or starting up), could
// not take the request now (out of connections, disk or memory), or gave up a transaction
// that kept losing serialization conflicts or deadlocks (after the engine's own retries): a
// request that failed so did nothing and may succeed later, and is answered 503, not 500. It
// reads the engine's error through small interfaces, so this package names no driver.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		code := st.SQLState()
		// Class 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown,
		// cannot connect now (starting up or shutting down); class 53: insufficient resources
		// (too many connections, disk full, out of memory); 40001 and 40P01: serialization
		// failure and deadlock, the transaction rolled back.
		return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") ||
			code == "57P01" || code == "57P02" || code == "57P03" || code == "40001" || code == "40P01"
	}
	// pgconn's error of a connection that broke mid-statement says so and carries no code.
	var safe interface{ SafeToRetry() bool }
	if errors.As(err, &safe) && safe.SafeToRetry() {
		return true
	}
	return strings.Contains(err.Error(), "conn closed")
}
