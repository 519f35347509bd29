package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/store"
)

// Audit outcomes.
const (
	outcomeAllowed = "allowed"
	outcomeDenied  = "denied"
	outcomeError   = "error"
)

// auditLine is one line of the audit log.
type auditLine struct {
	Time            string        `json:"time"`
	Identity        auditIdentity `json:"identity"`
	SourceIPAddress string        `json:"sourceIPAddress"`
	Face            string        `json:"face"`
	Action          string        `json:"action"`
	Resource        string        `json:"resource"`
	Outcome         string        `json:"outcome"`
	ErrorCode       string        `json:"errorCode,omitempty"`
	ErrorMessage    string        `json:"errorMessage,omitempty"`
	HTTPStatus      int           `json:"httpStatus"`
	Method          string        `json:"method"`
	Path            string        `json:"path"`
}

// auditIdentity is the caller: an access key's id and name, both empty when anonymous.
type auditIdentity struct {
	AccessKeyID string `json:"accessKeyId"`
	Name        string `json:"name"`
}

// outbox is where the audit writes CloudTrail-shaped events.
type outbox interface {
	AppendOutbox(ctx context.Context, events ...store.OutboxEvent) error
}

// auditor records every mutating call and every refusal: one JSON line each to its writer
// (--audit-log), and an "AWS API Call via CloudTrail" event when a webhook asks for them.
type auditor struct {
	mu     sync.Mutex
	w      io.Writer // nil: no log file
	close  func() error
	trail  bool
	origin events.Origin
	outbox outbox
	notify func()
	log    *slog.Logger
}

// openAuditLog opens the audit log: path "-" is standard output, "" none; a file is appended
// to, created private (what keys did, from where, is nobody else's business).
func openAuditLog(path string) (io.Writer, func() error, error) {
	switch path {
	case "":
		return nil, func() error { return nil }, nil
	case "-":
		return os.Stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, privateFile)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return f, f.Close, nil
}

// record is called once per request, after it was served, with what its Attempt holds.
func (a *auditor) record(r *http.Request, status int, att *auth.Attempt) {
	if a == nil || (a.w == nil && !a.trail) {
		return
	}
	line := auditLine{
		Time:            time.Now().UTC().Format(time.RFC3339Nano),
		Identity:        auditIdentity{AccessKeyID: att.AccessKeyID, Name: att.Name},
		SourceIPAddress: sourceIP(r),
		Face:            att.Face,
		Action:          att.Action,
		Resource:        att.Resource,
		ErrorCode:       att.ErrorCode,
		HTTPStatus:      status,
		Method:          r.Method,
		Path:            r.URL.Path,
	}
	switch {
	case att.Authz == auth.AuthzDenied:
		line.Outcome, line.ErrorMessage = outcomeDenied, att.Denial
	case att.Result == auth.ResultFailed || att.Result == auth.ResultThrottled:
		// Refused before any action could be authorized: the credentials did not check out.
		line.Outcome = outcomeDenied
		if att.Result == auth.ResultThrottled {
			line.ErrorMessage = "too many failed authentications"
		} else {
			line.ErrorMessage = "authentication failed"
		}
	case att.Authz == auth.AuthzAllowed && auth.IsMutating(att.Action):
		line.Outcome = outcomeAllowed
		if status >= 400 {
			line.Outcome = outcomeError
		}
	default:
		return
	}
	if a.w != nil {
		b, err := json.Marshal(line)
		if err == nil {
			a.mu.Lock()
			_, err = a.w.Write(append(b, '\n'))
			a.mu.Unlock()
		}
		if err != nil {
			a.log.Error("write audit log", "err", err)
		}
	}
	if a.trail && line.Action != "" {
		a.writeTrail(r, line)
	}
}

func (a *auditor) writeTrail(r *http.Request, line auditLine) {
	service, _, _ := strings.Cut(line.Action, ":")
	call := events.APICall{
		Service: service, Action: line.Action, AccessKeyID: line.Identity.AccessKeyID, UserName: line.Identity.Name,
		SourceIP: line.SourceIPAddress, UserAgent: r.UserAgent(), Repository: repositoryOf(line.Resource),
	}
	if line.Outcome != outcomeAllowed {
		call.ErrorCode, call.ErrorMessage = line.ErrorCode, line.ErrorMessage
		if line.Outcome == outcomeDenied {
			call.ErrorCode = "AccessDenied"
		}
	}
	ev, err := a.origin.APICall(call, !auth.IsMutating(line.Action))
	if err == nil {
		// The request is over: the event is written even if its client went away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		err = a.outbox.AppendOutbox(ctx, ev)
		cancel()
	}
	if err != nil {
		a.log.Error("write audit event", "err", err)
		return
	}
	a.notify()
}

// repositoryOf is the repository name of a repository ARN, or "".
func repositoryOf(resource string) string {
	_, name, ok := strings.Cut(resource, ":repository/")
	if !ok || !strings.HasPrefix(resource, "arn:") {
		return ""
	}
	return name
}

// sourceIP is the peer's address (X-Forwarded-For is not trusted, as for the login throttle).
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
