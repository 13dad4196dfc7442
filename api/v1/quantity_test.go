package v1

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in      string
		int64   int64
		milli   int64
		milliOK bool
		integer bool
		sign    int
	}{
		{"0", 0, 0, true, true, 0},
		{"1", 1, 1000, true, true, 1},
		{"+7", 7, 7000, true, true, 1},
		{"-3", -3, -3000, true, true, -1},
		{"1.5", 2, 1500, true, false, 1},
		{"-1.5", -1, -1500, true, false, -1},
		{".5", 1, 500, true, false, 1},
		{"2.", 2, 2000, true, true, 1},
		{"500m", 1, 500, true, false, 1},
		{"1m", 1, 1, true, false, 1},
		{"0.0001", 1, 1, true, false, 1},
		{"1500m", 2, 1500, true, false, 1},
		{"2000m", 2, 2000, true, true, 1},
		{"1Ki", 1024, 1024000, true, true, 1},
		{"1.5Ki", 1536, 1536000, true, true, 1},
		{"2Mi", 2 << 20, 2 << 20 * 1000, true, true, 1},
		{"2Gi", 2 << 30, 2 << 30 * 1000, true, true, 1},
		{"1Ti", 1 << 40, 1 << 40 * 1000, true, true, 1},
		{"1Pi", 1 << 50, 1 << 50 * 1000, true, true, 1},
		{"9Pi", 9 << 50, 0, false, true, 1},
		{"7Ei", 7 << 60, 0, false, true, 1},
		{"1k", 1000, 1e6, true, true, 1},
		{"512M", 512e6, 512e9, true, true, 1},
		{"3G", 3e9, 3e12, true, true, 1},
		{"1T", 1e12, 1e15, true, true, 1},
		{"1P", 1e15, 1e18, true, true, 1},
		{"9E", 9e18, 0, false, true, 1},
		{"1E", 1e18, 0, false, true, 1},
		{"1e3", 1000, 1e6, true, true, 1},
		{"1E3", 1000, 1e6, true, true, 1},
		{"1e+3", 1000, 1e6, true, true, 1},
		{"2.5e-3", 1, 3, true, false, 1},
		{"15e-1", 2, 1500, true, false, 1},
		{"1e18", 1e18, 0, false, true, 1},
		{"9223372036854775807", math.MaxInt64, 0, false, true, 1},
		{"-9223372036854775807", -math.MaxInt64, 0, false, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			q, err := ParseQuantity(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Int64(); got != tt.int64 {
				t.Errorf("Int64() = %d, want %d", got, tt.int64)
			}
			m, ok := q.MilliValue()
			if ok != tt.milliOK || (ok && m != tt.milli) {
				t.Errorf("MilliValue() = %d, %v; want %d, %v", m, ok, tt.milli, tt.milliOK)
			}
			if q.IsInteger() != tt.integer {
				t.Errorf("IsInteger() = %v", q.IsInteger())
			}
			if q.Sign() != tt.sign {
				t.Errorf("Sign() = %d", q.Sign())
			}
		})
	}
}

func TestParseQuantityErrors(t *testing.T) {
	for _, in := range []string{
		"", " 1", "1 ", "-", "+", ".", "e3", "1e", "1e+", "1ee3", "1.2.3", "1KiB", "1ki", "1K", "1i",
		"Ki", "--1", "1e3Ki", "1Ki3", "0x10", "1_000", "١", "1e41", "1e-41", "9Ei", "8Ei",
		"9223372036854775808", "-9223372036854775809", "10E", strings.Repeat("1", 65), "NaN", "Inf", "max",
	} {
		if q, err := ParseQuantity(in); err == nil {
			t.Errorf("ParseQuantity(%q) = %v, want error", in, q)
		} else if !errors.Is(err, ErrBadQuantity) {
			t.Errorf("ParseQuantity(%q) error %v does not wrap ErrBadQuantity", in, err)
		}
	}
}

func TestQuantityHelpers(t *testing.T) {
	if b, err := Quantity("1.5Gi").Bytes(); err != nil || b != 1610612736 {
		t.Errorf("Bytes(1.5Gi) = %d, %v", b, err)
	}
	if m, err := Quantity("250m").Millicores(); err != nil || m != 250 {
		t.Errorf("Millicores(250m) = %d, %v", m, err)
	}
	if _, err := Quantity("1Ei").Millicores(); err == nil {
		t.Error("Millicores(1Ei) succeeded")
	}
	a, _ := ParseQuantity("1Ki")
	b, _ := ParseQuantity("1024")
	c, _ := ParseQuantity("1k")
	if a.Cmp(b) != 0 || a.Cmp(c) <= 0 || c.Cmp(a) >= 0 {
		t.Error("Cmp is wrong")
	}
	if s := (QuantityValue{}).String(); s != "0" {
		t.Errorf("zero String() = %q", s)
	}
	if q, _ := ParseQuantity("100m"); q.String() != "1/10" {
		t.Errorf("String() = %q", q.String())
	}
}

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"0", "1.5Ki", "500m", "1e3", "-2.5E-3", "7Ei", "9E", ".5", "1E", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuantity(s)
		if err != nil {
			if !errors.Is(err, ErrBadQuantity) {
				t.Fatalf("error %v does not wrap ErrBadQuantity", err)
			}
			return
		}
		n := q.Int64() // must not panic; ceil of the value
		if q.IsInteger() {
			back, err := ParseQuantity(q.String())
			if err != nil || back.Cmp(q) != 0 || back.Int64() != n {
				t.Fatalf("%q: integer %s does not re-parse: %v", s, q.String(), err)
			}
		}
		if m, ok := q.MilliValue(); ok && q.Sign() > 0 && m <= 0 {
			t.Fatalf("%q: positive value has MilliValue %d", s, m)
		}
		if q.Sign() > 0 && n <= 0 || q.Sign() < 0 && n > 0 {
			t.Fatalf("%q: Int64 %d has the wrong sign", s, n)
		}
	})
}
