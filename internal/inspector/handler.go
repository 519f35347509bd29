// Package inspector serves Amazon Inspector's (v2) API for the registry's findings: restJson1
// (the operation is the method and path, e.g. POST /findings/list), SigV4 with service
// inspector2, errors named in X-Amzn-ErrorType with the model's HTTP status codes. It holds no
// rules: requests are translated to internal/findings' types, answers from them, and domain
// errors go through one table (errors.go).
package inspector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/kev"
	"github.com/lading-registry/lading/internal/store"
)

// maxRequestBody bounds a request: the model's nextToken alone may be a million characters.
const maxRequestBody = 2 << 20

// Authenticator verifies callers.
type Authenticator interface {
	CheckSigV4Header(r *http.Request, policy auth.SigV4Policy) error
	VerifySigV4(r *http.Request, body []byte, policy auth.SigV4Policy) (auth.SigV4Result, error)
}

// Findings is what the face needs from the findings service.
type Findings interface {
	List(ctx context.Context, in findings.ListInput) (findings.ListOutput, error)
	Details(ctx context.Context, arns []string) (findings.DetailsOutput, error)
	SearchVulnerabilities(ctx context.Context, ids []string) ([]findings.Vulnerability, error)
	Exploit(ids ...string) (kev.Entry, bool)
	Aggregate(ctx context.Context, in findings.Aggregation) (findings.AggregationOutput, error)
}

// Authorizer decides what a caller may do (internal/auth).
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, action, resource string) error
}

// Config tunes the face.
type Config struct {
	// Authorizer decides every call before its operation runs, as inspector2:<Operation> on
	// "*" (Inspector's actions name no resource); nil runs every call (tests of the protocol).
	Authorizer Authorizer
	RegistryID string
	// Coverage answers ListCoverage and ListCoverageStatistics, Scanning the account and
	// configuration operations; nil answers them NotImplementedException.
	Coverage Coverage
	Scanning Scanning
	// Region is the region in ARNs and resources; requests may be signed for any region.
	Region string
	Logger *slog.Logger
	// Rules are the suppression rules (CreateFilter, ListFilters, UpdateFilter, DeleteFilter);
	// nil answers those operations 501.
	Rules Rules
	// Reports runs SBOM exports and findings reports; nil answers their operations 501.
	Reports Reports
}

// Handler serves the Inspector2 API.
type Handler struct {
	auth     Authenticator
	findings Findings
	sigV4    auth.SigV4Policy
	cfg      Config
	mux      *http.ServeMux
	ops      map[string]operation // by name
	routes   map[string]string    // mux pattern -> metrics route name
}

// call is one API request being served.
type call struct {
	r         *http.Request
	op        string
	principal auth.Principal
}

type handlerFunc func(ctx context.Context, c *call, body []byte) (any, error)

// NewHandler returns the face over the findings service.
func NewHandler(authn Authenticator, fs Findings, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{auth: authn, findings: fs, sigV4: auth.RESTJSONPolicy("inspector2"), cfg: cfg, mux: http.NewServeMux(),
		ops: map[string]operation{}, routes: map[string]string{}}
	for _, op := range h.operations() {
		h.ops[op.Name] = op
		pattern := op.Method + " " + op.Path
		h.routes[pattern] = "inspector_" + op.Name
		h.mux.Handle(pattern, h.serve(op))
	}
	return h
}

// Operations lists the operations this face implements.
func (h *Handler) Operations() []string {
	var out []string
	for name, op := range h.ops {
		if op.handle != nil {
			out = append(out, name)
		}
	}
	return out
}

// Handles reports whether a request is for an operation of Inspector's model (implemented or
// not): the app routes those here.
func (h *Handler) Handles(r *http.Request) bool {
	_, pattern := h.mux.Handler(r)
	return pattern != ""
}

// RouteName names the operation of a request, for metrics labels.
func (h *Handler) RouteName(r *http.Request) string {
	_, pattern := h.mux.Handler(r)
	if name, ok := h.routes[pattern]; ok {
		return name
	}
	return "inspector_unknown"
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Handles(r) {
		h.writeError(w, r, "", &apiError{Type: errUnknownOperation, Status: http.StatusNotFound,
			Message: "No Inspector2 operation is " + r.Method + " " + r.URL.Path})
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) serve(op operation) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Everything but the signature is checked before the body is read, so that clients
		// without a valid key cannot make the server buffer bodies.
		if err := h.auth.CheckSigV4Header(r, h.sigV4); err != nil {
			h.authError(w, r, op.Name, err)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		if err != nil {
			h.writeError(w, r, op.Name, findings.Invalid(findings.ReasonCannotParse, "body", "could not read the request body"))
			return
		}
		if len(body) > maxRequestBody {
			h.writeError(w, r, op.Name, &apiError{Type: errValidation, Status: http.StatusRequestEntityTooLarge,
				Message: "Request body exceeds " + strconv.Itoa(maxRequestBody) + " bytes", Extra: map[string]any{"reason": findings.ReasonOther}})
			return
		}
		res, err := h.auth.VerifySigV4(r, body, h.sigV4)
		if err != nil {
			h.authError(w, r, op.Name, err)
			return
		}
		ctx := auth.WithPrincipal(r.Context(), res.Principal)
		if az := h.cfg.Authorizer; az != nil {
			if err := az.Authorize(ctx, res.Principal, "inspector2:"+op.Name, "*"); err != nil {
				h.writeError(w, r, op.Name, err)
				return
			}
		}
		if op.handle == nil {
			h.writeError(w, r, op.Name, &apiError{Type: errNotImplemented, Status: http.StatusNotImplemented,
				Message: "Lading does not implement the Inspector2 operation " + op.Name + " yet"})
			return
		}
		if len(body) == 0 {
			body = []byte("{}")
		}
		h.cfg.Logger.DebugContext(r.Context(), "Inspector2 call", "op", op.Name, "access_key_id", res.Principal.AccessKeyID, "signing_region", res.Region)
		c := &call{r: r, op: op.Name, principal: res.Principal}
		out, err := op.handle(ctx, c, body)
		if err != nil {
			h.writeError(w, r, op.Name, err)
			return
		}
		b, err := json.Marshal(out)
		if err != nil {
			h.writeError(w, r, op.Name, err)
			return
		}
		h.writeJSON(w, http.StatusOK, b, "")
	})
}

// authError answers a SigV4 refusal as AWS's REST services do (403 with the signature error's
// name; 429 ThrottlingException with Retry-After for a throttled caller).
func (h *Handler) authError(w http.ResponseWriter, r *http.Request, op string, err error) {
	var se *auth.SigV4Error
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &se):
		err = &apiError{Type: se.Code, Status: http.StatusForbidden, Message: se.Message}
	case errors.As(err, &te):
		secs := te.RetryAfterSeconds()
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		err = &apiError{Type: errThrottling, Status: http.StatusTooManyRequests, Message: "Rate exceeded"}
	}
	h.writeError(w, r, op, err)
}

func (h *Handler) writeJSON(w http.ResponseWriter, status int, b []byte, errType string) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-RequestId", hex.EncodeToString(id[:]))
	if errType != "" {
		w.Header().Set("X-Amzn-ErrorType", errType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, op string, err error) {
	ae := h.wireError(err)
	if ae == nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		h.cfg.Logger.ErrorContext(r.Context(), "Inspector2 operation failed", "op", op, "err", err)
		ae = &apiError{Type: errInternal, Status: http.StatusInternalServerError, Message: "An internal error occurred in Lading"}
		if store.Unavailable(err) {
			ae = &apiError{Type: errInternal, Status: http.StatusServiceUnavailable, Message: "The metadata store is unavailable; retry later"}
		}
	}
	h.writeJSON(w, ae.Status, ae.body(), ae.Type)
}
