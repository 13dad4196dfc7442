package restapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzProcstarPost throws arbitrary bodies and content types at POST /procs:
// the answer is 200 or a 4xx with procstar's error shape, never a 500.
func FuzzProcstarPost(f *testing.F) {
	for _, s := range []string{
		goodSpecs, `{"specs":{}}`, `{"specs":`, `{}`, `[]`, `null`, "",
		`{"specs":{"x":{"argv":["a"],"bogus":1}}}`,
		`{"specs":{"x":{"argv":["/bin/true"],"fds":[["stdout",{"capture":{"mode":"memory"}}],["2",{"dup":{"fd":1}}]]}}}`,
		`{"specs":{"x":{"exe":"/bin/sh","argv":[],"env":{"inherit":["PATH"],"vars":{"A":null}}}}}`,
		`{"specs":{"x":{"fds":[["stdin","inherit"],["-1","close"]]}}}`,
		`{"specs":{"":{"argv":["a"]}}}`, `{"specs":{"a/b":{"argv":["a"]}}}`,
		`{"specs":{"x":{"argv":["a\u0000b"]}}}`,
	} {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(goodSpecs), "application/json; charset=utf-8")
	f.Add([]byte(goodSpecs), "text/plain")
	h := NewHandler(newFake(), Options{MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		req := httptest.NewRequest("POST", "/procs", bytes.NewReader(body))
		if ct != "" && !strings.ContainsAny(ct, "\r\n\x00") {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if rec.Body.String() != okEmpty {
				t.Fatalf("200 with body %q", rec.Body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e struct {
				Errors struct {
					Status string  `json:"status"`
					Detail *string `json:"detail"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Errors.Detail == nil || e.Errors.Status == "" {
				t.Fatalf("error body %q: %v", rec.Body, err)
			}
		default:
			t.Fatalf("code %d for %q (%q): %s", rec.Code, body, ct, rec.Body)
		}
	})
}

// FuzzV1Create does the same for the v1 create route: never a 500.
func FuzzV1Create(f *testing.F) {
	f.Add([]byte("apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: a}\nspec: {argv: [/bin/true]}\n"), "application/yaml")
	f.Add([]byte(`{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"a"},"spec":{"argv":["x"]}}`), "application/json")
	f.Add([]byte("kind: ProcList\napiVersion: procstar.dev/v1\nitems: []\n"), "")
	f.Add([]byte("- 1\n- 2\n"), "")
	h := NewHandler(newFake(), Options{MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		req := httptest.NewRequest("POST", procsPath, bytes.NewReader(body))
		if ct != "" && !strings.ContainsAny(ct, "\r\n\x00") {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("code %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
