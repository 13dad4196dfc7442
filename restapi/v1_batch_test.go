package restapi

// Tests of the batch create (POST of a ProcList) against the real
// controller and runtime, with real processes.

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/controller"
	"procstar.dev/procstar/controller/controllertest"
)

// realBackend is the agent's controller over a real runtime, stopped at
// the end of the test.
func realBackend(t *testing.T) *controller.Controller {
	t.Helper()
	return controllertest.New(t, controller.Options{})
}

// listBody is a ProcList of procs, as JSON.
func listBody(t *testing.T, procs ...v1.Proc) string {
	t.Helper()
	b, err := json.Marshal(v1.ProcList{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProcList}, Items: procs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pipelineSample is config/samples/pipeline.yaml, decoded.
func pipelineSample(t *testing.T) []v1.Proc {
	t.Helper()
	b, err := os.ReadFile("../config/samples/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	procs, err := v1.Decode(b)
	if err != nil || len(procs) != 2 {
		t.Fatalf("pipeline sample: %d procs, %v", len(procs), err)
	}
	return procs
}

// TestV1CreateBatchPipeline starts the pipeline sample as one batch: the
// consumer counts what the producer wrote through the pipe.
func TestV1CreateBatchPipeline(t *testing.T) {
	srv := testServerFor(t, realBackend(t), Options{})
	procs := pipelineSample(t)
	r := do(t, srv, "POST", procsPath, listBody(t, procs...), "Content-Type: application/json")
	if r.code != http.StatusCreated {
		t.Fatalf("POST ProcList: %d %s", r.code, r.body)
	}
	if got := strings.Join(names(t, r.body), ","); got != "pipeline-producer,pipeline-consumer" {
		t.Errorf("created %s", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = do(t, srv, "GET", procsPath+"/pipeline-consumer", "")
		var p v1.Proc
		if err := json.Unmarshal([]byte(r.body), &p); err != nil {
			t.Fatalf("GET: %d %s", r.code, r.body)
		}
		if p.Status.Phase == v1.PhaseSucceeded {
			break
		}
		if p.Status.Phase == v1.PhaseFailed || p.Status.Phase == v1.PhaseError || time.Now().After(deadline) {
			t.Fatalf("consumer: %+v", p.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The producer writes "hello through a pipe\n"; wc -c counts it.
	want := strconv.Itoa(len("hello through a pipe\n")) + "\n"
	r = do(t, srv, "GET", procsPath+"/pipeline-consumer/log?follow=true", "")
	if r.code != 200 || r.body != want {
		t.Errorf("consumer's stdout: %d %q, want %q", r.code, r.body, want)
	}

	// The same as YAML, under other names: a ProcList document works too.
	yaml := "apiVersion: procstar.dev/v1\nkind: ProcList\nitems:\n" +
		"- metadata: {name: w}\n  spec: {argv: [/bin/echo, hi], fds: [{fd: stdout, pipeWrite: {}}]}\n" +
		"- metadata: {name: r}\n  spec: {argv: [/bin/cat], fds: [{fd: stdin, pipeRead: {procId: w, fd: stdout}}, {fd: stdout, capture: {mode: memory, encoding: utf-8}}]}\n"
	r = do(t, srv, "POST", procsPath, yaml, "Content-Type: application/yaml")
	if r.code != http.StatusCreated || strings.Join(names(t, r.body), ",") != "w,r" {
		t.Fatalf("POST YAML ProcList: %d %s", r.code, r.body)
	}
	r = do(t, srv, "GET", procsPath+"/r/log?follow=true", "")
	if r.body != "hi\n" {
		t.Errorf("r's stdout %q", r.body)
	}
}

// TestV1CreateBatchErrors: bad batches get a clear 4xx Status and create
// nothing.
func TestV1CreateBatchErrors(t *testing.T) {
	srv := testServerFor(t, realBackend(t), Options{})
	procs := pipelineSample(t)
	producer, consumer := procs[0], procs[1]
	trueProc := func(name string) v1.Proc {
		return v1.Proc{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ProcSpec{Argv: []string{"/bin/true"}}}
	}
	if r := do(t, srv, "POST", procsPath, listBody(t, trueProc("exists"))); r.code != http.StatusCreated {
		t.Fatalf("setup: %d %s", r.code, r.body)
	}
	invalid := trueProc("invalid")
	invalid.Spec.Argv = nil
	for _, tc := range []struct {
		name, body string
		code       int
		reason     v1.StatusReason
		msg        string
		absent     []string // procs the failed batch must not have created
	}{
		{"empty list", `{"apiVersion":"procstar.dev/v1","kind":"ProcList","items":[]}`, 400, v1.StatusReasonBadRequest, "the ProcList has no items; send at least one Proc", nil},
		{"no items", "apiVersion: procstar.dev/v1\nkind: ProcList\n", 400, v1.StatusReasonBadRequest, "no items", nil},
		{"duplicate names", listBody(t, trueProc("a"), trueProc("b"), trueProc("a")), 400, v1.StatusReasonBadRequest,
			`the ProcList names proc "a" twice (items[0] and items[2]); names in a batch must be unique`, []string{"a", "b"}},
		{"unmatched write pipe", listBody(t, producer), 400, v1.StatusReasonBadRequest, "unmatched write pipe: pipeline-producer 1", []string{"pipeline-producer"}},
		{"unmatched read pipe", listBody(t, trueProc("c"), consumer), 400, v1.StatusReasonBadRequest, "unmatched read pipe: pipeline-producer stdout", []string{"c", "pipeline-consumer"}},
		{"exists", listBody(t, trueProc("d"), trueProc("exists")), 409, v1.StatusReasonAlreadyExists, "exists", []string{"d"}},
		{"invalid item", listBody(t, trueProc("e"), invalid), 422, v1.StatusReasonInvalid, `items[1]: proc "invalid" is invalid`, []string{"e", "invalid"}},
		{"list and more", listBody(t, trueProc("f")) + "\n---\n" + "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: g}\nspec: {argv: [/bin/true]}\n",
			400, v1.StatusReasonBadRequest, "send one ProcList", []string{"f", "g"}},
		{"unknown field", `{"apiVersion":"procstar.dev/v1","kind":"ProcList","items":[{"metadata":{"name":"h"},"spec":{"argv":["/bin/true"],"bogus":1}}]}`,
			400, v1.StatusReasonBadRequest, "bogus", []string{"h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, "POST", procsPath, tc.body)
			if r.code != tc.code {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.code)
			}
			st := decodeStatus(t, r)
			if st.Reason != tc.reason || !strings.Contains(st.Message, tc.msg) {
				t.Errorf("Status %+v, want reason %s and %q", st, tc.reason, tc.msg)
			}
			for _, n := range tc.absent {
				if r := do(t, srv, "GET", procsPath+"/"+n, ""); r.code != http.StatusNotFound {
					t.Errorf("the failed batch created %s", n)
				}
			}
		})
	}
	// A single Proc still gets a Proc back, and two Procs without a list
	// are refused, as before.
	r := do(t, srv, "POST", procsPath, `{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"single"},"spec":{"argv":["/bin/true"]}}`)
	var p v1.Proc
	if r.code != http.StatusCreated || json.Unmarshal([]byte(r.body), &p) != nil || p.Kind != v1.KindProc || p.Metadata.Name != "single" {
		t.Errorf("single create: %d %s", r.code, r.body)
	}
	two := "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: t1}\nspec: {argv: [/bin/true]}\n---\napiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: t2}\nspec: {argv: [/bin/true]}\n"
	r = do(t, srv, "POST", procsPath, two)
	if st := decodeStatus(t, r); r.code != 400 || !strings.Contains(st.Message, "body holds 2 procs; send exactly one, or a ProcList") {
		t.Errorf("two procs: %d %s", r.code, r.body)
	}
}
