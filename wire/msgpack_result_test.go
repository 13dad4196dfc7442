package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// encodeReflective encodes m by the reflective path only.
func encodeReflective(t *testing.T, m Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	if err := (encoder{e: e, buf: &buf}).structFields(reflect.ValueOf(m), m.MessageType()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEncodeProcResultFastPath checks that the ProcResult fast path writes
// exactly what the reflective path writes.
func TestEncodeProcResultFastPath(t *testing.T) {
	full := typicalRes()
	full.ProcStat.Signal = nil
	full.ProcStat.ExitSignal = nil
	full.ProcStat.Tpgid = nil
	full.CgroupAccounting.CPUStat = CgroupCPUStat{UsageUsec: math.MaxUint64, NrPeriods: ptr(uint64(1)), NrThrottled: ptr(uint64(300)),
		ThrottledUsec: ptr(uint64(70000)), NrBursts: ptr(uint64(1 << 40)), BurstUsec: ptr(uint64(0))}
	full.Status = &Status{Status: 9, Signum: ptr(9), Signal: ptr("SIGKILL"), CoreDump: true}
	full.Rusage.Majflt, full.Rusage.Nswap, full.Rusage.Inblock = -1, math.MaxInt64, math.MinInt64
	full.Times.Start = NewTime(time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC))
	full.Times.Now = NewTime(time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC))
	noPtrs := runningRes()
	noPtrs.ProcStat, noPtrs.ProcStatm = nil, nil
	many := runningRes()
	for i := range 20 {
		many.Fds[strings.Repeat("x", i)+"fd"] = &FdRes{Type: FdResText, Text: strings.Repeat("é", 40*i), Encoding: "utf-8"}
	}
	for name, r := range map[string]ProcRes{
		"typical": typicalRes(), "running": runningRes(), "full": full, "noPtrs": noPtrs, "many": many, "zero": {},
	} {
		t.Run(name, func(t *testing.T) {
			m := ProcResult{ProcID: "proc-" + name, Res: r}
			want := encodeReflective(t, m)
			for _, msg := range []Message{m, &m} {
				got, err := EncodeMessage(msg)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("fast path differs:\n got % x\nwant % x", got, want)
				}
			}
		})
	}
	// A bad fd result fails with the reflective path's error.
	m := ProcResult{ProcID: "p", Res: runningRes()}
	m.Res.Fds["stdout"] = &FdRes{Type: "bogus"}
	_, err := EncodeMessage(m)
	if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), "res: fds: stdout: unknown fd result type") {
		t.Fatalf("err = %v", err)
	}
}

// TestAppendTimeLayout checks appendTime's hand-written layout against
// time.Time.AppendFormat.
func TestAppendTimeLayout(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 28, 16, 52, 56, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(999, 9, 9, 9, 9, 9, 9000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
	} {
		got := string(appendTime(nil, tm))
		want := tm.UTC().Format("2006-01-02T15:04:05")
		if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "+00:00") {
			t.Errorf("appendTime(%v) = %q, want %q…+00:00", tm, got, want)
		}
	}
}

// TestMpMatchesEncoder checks the mp* functions against msgpack.Encoder at every
// format boundary.
func TestMpMatchesEncoder(t *testing.T) {
	var ints []int64
	for _, b := range []int64{0, 31, 32, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64} {
		ints = append(ints, b-1, b, b+1, -b-1, -b, -b+1)
	}
	ints = append(ints, math.MinInt64, math.MinInt64+1, math.MinInt8, math.MinInt16, math.MinInt32)
	lens := []int{0, 1, 15, 16, 17, 31, 32, 33, 255, 256, 257, 65535, 65536, 65537}
	check := func(name string, write func([]byte) []byte, enc func(*msgpack.Encoder) error) {
		t.Helper()
		var buf bytes.Buffer
		if err := enc(msgpack.NewEncoder(&buf)); err != nil {
			t.Fatal(err)
		}
		b := write(nil)
		if !bytes.Equal(b, buf.Bytes()) {
			t.Errorf("%s: mp % x, Encoder % x", name, b[:min(len(b), 16)], buf.Bytes()[:min(buf.Len(), 16)])
		}
	}
	for _, n := range ints {
		check(fmt.Sprint("int ", n), func(b []byte) []byte { return mpInt(b, n) }, func(e *msgpack.Encoder) error { return e.EncodeInt(n) })
		check(fmt.Sprint("uint ", uint64(n)), func(b []byte) []byte { return mpUint(b, uint64(n)) }, func(e *msgpack.Encoder) error { return e.EncodeUint(uint64(n)) })
	}
	for _, f := range []float64{0, -0.5, 1.376543211, math.Inf(1), math.MaxFloat64, 1e-300} {
		check(fmt.Sprint("float ", f), func(b []byte) []byte { return mpFloat(b, f) }, func(e *msgpack.Encoder) error { return e.EncodeFloat64(f) })
	}
	for _, n := range lens {
		s := strings.Repeat("a", n)
		check(fmt.Sprint("str ", n), func(b []byte) []byte { return mpStr(b, s) }, func(e *msgpack.Encoder) error { return e.EncodeString(s) })
		check(fmt.Sprint("array ", n), func(b []byte) []byte { return mpArrayLen(b, n) }, func(e *msgpack.Encoder) error { return e.EncodeArrayLen(n) })
		check(fmt.Sprint("map ", n), func(b []byte) []byte { return mpMapLen(b, n) }, func(e *msgpack.Encoder) error { return e.EncodeMapLen(n) })
	}
	check("str 70000", func(b []byte) []byte { return mpStr(b, strings.Repeat("b", 70000)) },
		func(e *msgpack.Encoder) error { return e.EncodeString(strings.Repeat("b", 70000)) })
	check("nil", func(b []byte) []byte { return mpNil(b) }, func(e *msgpack.Encoder) error { return e.EncodeNil() })
	check("true", func(b []byte) []byte { return mpBool(b, true) }, func(e *msgpack.Encoder) error { return e.EncodeBool(true) })
	check("false", func(b []byte) []byte { return mpBool(b, false) }, func(e *msgpack.Encoder) error { return e.EncodeBool(false) })
}
