package console

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pageSize is how many rows a console table shows at once.
const pageSize = 25

// listQuery is a table's query string, parsed and bounded: the filter text, the sort column
// (one of the table's), the order and the page. Anything out of range falls back to the
// default (the first page, the table's first column ascending), never to an error.
type listQuery struct {
	Filter string
	Sort   string
	Desc   bool
	Page   int
}

// maxFilter bounds the filter text (repository names are at most 256 characters).
const maxFilter = 256

func parseListQuery(q url.Values, columns []string) listQuery {
	lq := listQuery{Sort: columns[0], Page: 1}
	if f := strings.TrimSpace(q.Get("q")); utf8.ValidString(f) && len(f) <= maxFilter {
		lq.Filter = f
	}
	if s := q.Get("sort"); slices.Contains(columns, s) {
		lq.Sort = s
	}
	lq.Desc = q.Get("order") == "desc"
	if p, err := strconv.Atoi(q.Get("page")); err == nil && p >= 1 && p <= 1_000_000 {
		lq.Page = p
	}
	return lq
}

// values is lq as a query string, with the page given.
func (lq listQuery) values(page int) url.Values {
	v := url.Values{}
	if lq.Filter != "" {
		v.Set("q", lq.Filter)
	}
	v.Set("sort", lq.Sort)
	if lq.Desc {
		v.Set("order", "desc")
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

// window returns the bounds of lq's page among n rows, and the page actually shown: a page
// past the end is the first.
func (lq *listQuery) window(n int) (from, to int) {
	if (lq.Page-1)*pageSize >= n {
		lq.Page = 1
	}
	from = (lq.Page - 1) * pageSize
	return from, min(from+pageSize, n)
}

// oneOf returns v when it is one of allowed, else "".
func oneOf(v string, allowed ...string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return ""
}
