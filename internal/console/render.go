package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// layout is what every page's template gets.
type layout struct {
	Title   string
	Nav     string
	Session *sessionCtx
	Data    any
}

var funcs = template.FuncMap{
	"short": shortDigest,
	"bytes": func(n int64) string {
		if n <= 0 {
			return "—"
		}
		return humanize.IBytes(uint64(n))
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"sevclass": func(s string) string {
		return "sev-" + strings.ToLower(s)
	},
	"join": strings.Join,
	"add1": func(i int) int { return i + 1 },
	"score": func(f float64) string {
		if f == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f", f)
	},
}

func shortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return hex[:12]
}

// render writes a page: rendered into a buffer first, so that a template failure is a 500
// page and not half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, s *sessionCtx, status int, page, nav string, data map[string]any) {
	t, ok := h.pages[page]
	if !ok {
		http.Error(w, "no such page template", http.StatusInternalServerError)
		return
	}
	title, _ := data["Title"].(string)
	if s != nil {
		data["CSRF"] = s.CSRF // every form of a signed-in page carries it
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, layout{Title: title, Nav: nav, Session: s, Data: data}); err != nil {
		h.cfg.Logger.ErrorContext(r.Context(), "console template", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
