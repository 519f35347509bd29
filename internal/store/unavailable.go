package store

import (
	"errors"
	"net"
	"strings"
)

// Unavailable reports whether err says the metadata database could not be reached or went
// away (refused connections, a connection cut, a server shutting down or starting up): a
// request that failed so may succeed later, and is answered 503, not 500. It reads the
// engine's error through small interfaces, so this package names no driver.
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
		// cannot connect now (starting up or shutting down).
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
	}
	// pgconn's error of a connection that broke mid-statement says so and carries no code.
	var safe interface{ SafeToRetry() bool }
	if errors.As(err, &safe) && safe.SafeToRetry() {
		return true
	}
	return strings.Contains(err.Error(), "conn closed")
}
