package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	v1 "procstar.dev/procstar/api/v1"
)

// wellFormed is Unicode's Table 3-7, "Well-Formed UTF-8 Byte Sequences":
// each row is the allowed range of each byte.
var wellFormed = [][][2]byte{
	{{0x00, 0x7f}},
	{{0xc2, 0xdf}, {0x80, 0xbf}},
	{{0xe0, 0xe0}, {0xa0, 0xbf}, {0x80, 0xbf}},
	{{0xe1, 0xec}, {0x80, 0xbf}, {0x80, 0xbf}},
	{{0xed, 0xed}, {0x80, 0x9f}, {0x80, 0xbf}},
	{{0xee, 0xef}, {0x80, 0xbf}, {0x80, 0xbf}},
	{{0xf0, 0xf0}, {0x90, 0xbf}, {0x80, 0xbf}, {0x80, 0xbf}},
	{{0xf1, 0xf3}, {0x80, 0xbf}, {0x80, 0xbf}, {0x80, 0xbf}},
	{{0xf4, 0xf4}, {0x80, 0x8f}, {0x80, 0xbf}, {0x80, 0xbf}},
}

// refLossy is the U+FFFD substitution of maximal subparts written straight
// from the Unicode standard (chapter 3, "U+FFFD Substitution of Maximal
// Subparts"): at each position, a whole well-formed sequence is copied;
// otherwise the longest prefix of any well-formed sequence (at least one
// byte) is replaced by one U+FFFD.
func refLossy(b []byte) string {
	var out strings.Builder
	for i := 0; i < len(b); {
		best, whole := 0, false
		for _, row := range wellFormed {
			n := 0
			for n < len(row) && i+n < len(b) && b[i+n] >= row[n][0] && b[i+n] <= row[n][1] {
				n++
			}
			if n == len(row) {
				best, whole = n, true
				break
			}
			best = max(best, n)
		}
		if whole {
			out.Write(b[i : i+best])
			i += best
			continue
		}
		out.WriteString("\uFFFD")
		i += max(best, 1)
	}
	return out.String()
}

func TestLossyUTF8(t *testing.T) {
	const R = "\uFFFD"
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain ascii\n", "plain ascii\n"},
		{"héllo → 世界 🎉", "héllo → 世界 🎉"},
		{"abc\x80\x80def", "abc" + R + R + "def"},
		{"\xe2\x82x", R + "x"},
		{"\xe2\x82", R},
		{"\xe2", R},
		{"\xed\xa0\x80", R + R + R},         // surrogate D800
		{"\xed\xbf\xbf", R + R + R},         // surrogate DFFF
		{"\xc0\xaf", R + R},                 // overlong '/'
		{"\xc1\xbf", R + R},                 // overlong
		{"\xe0\x80\xaf", R + R + R},         // overlong 3-byte
		{"\xf0\x80\x80\xaf", R + R + R + R}, // overlong 4-byte
		{"\xf4\x90\x80\x80", R + R + R + R}, // above U+10FFFF
		{"\xf5\x80\x80\x80", R + R + R + R}, // F5 never valid
		{"\xff\xfe", R + R},
		{"\xf0\x9f\x8e", R}, // truncated emoji
		{"\xf0\x9f\x8ex", R + "x"},
		{"\xf0\x9fx", R + "x"},
		{"\xf0\x9f\x8e\xc3\xa9", R + "é"},
		{"\xe2\x82\xac", "€"},
		{"a\xc3", "a" + R},
		{"\xc3\xc3\xa9", R + "é"},
		{"\xef\xbf\xbd", R}, // a literal U+FFFD stays one
		{"\x80\xbf\x80", R + R + R},
		{"\xe1\x80\xe1\x80\x80", R + "\u1000"},
		{"\xf4\x8f\xbf\xbf", "\U0010FFFF"},
		{"\xf1\x80\x80", R},
		{"\x00\x7f", "\x00\x7f"},
		// Markus Kuhn's example from the Unicode standard, Table 3-8.
		{"\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64", "a" + R + R + R + "b" + R + "c" + R + R + "d"},
	}
	for _, tt := range tests {
		got := LossyUTF8([]byte(tt.in))
		if got != tt.want {
			t.Errorf("LossyUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if ref := refLossy([]byte(tt.in)); ref != tt.want {
			t.Errorf("refLossy(%q) = %q, want %q (bad table entry?)", tt.in, ref, tt.want)
		}
	}
	if n := utf8.RuneCountInString(LossyUTF8([]byte("abc\x80\x80def"))); n != 8 {
		t.Errorf("rune count %d, want 8", n)
	}
	// Go's ToValidUTF8 merges runs; we must not.
	if strings.ToValidUTF8("abc\x80\x80def", R) == LossyUTF8([]byte("abc\x80\x80def")) {
		t.Error("LossyUTF8 behaves like strings.ToValidUTF8")
	}
}

func TestLossyUTF8AllShortSequences(t *testing.T) {
	// Every 1- and 2-byte input, and 3-byte inputs over interesting bytes.
	interesting := []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff}
	for a := 0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			in := []byte{byte(a), byte(b)}
			if got, want := LossyUTF8(in), refLossy(in); got != want {
				t.Fatalf("%x: %q, want %q", in, got, want)
			}
		}
	}
	for _, a := range interesting {
		for _, b := range interesting {
			for _, c := range interesting {
				for _, d := range interesting {
					in := []byte{a, b, c, d}
					if got, want := LossyUTF8(in), refLossy(in); got != want {
						t.Fatalf("%x: %q, want %q", in, got, want)
					}
				}
			}
		}
	}
}

func FuzzLossyUTF8(f *testing.F) {
	for _, s := range []string{"", "abc\x80\x80def", "\xe2\x82x", "\xed\xa0\x80", "\xc0\xaf", "\xf0\x9f\x8e\x89", "\xf4\x90"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := LossyUTF8(b)
		if want := refLossy(b); got != want {
			t.Fatalf("LossyUTF8(%q) = %q, want %q", b, got, want)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid output %q", got)
		}
	})
}

func TestBase2048RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 64; n++ {
		for _, fill := range []string{"zero", "ones", "random"} {
			b := make([]byte, n)
			for i := range b {
				switch fill {
				case "ones":
					b[i] = 0xff
				case "random":
					b[i] = byte(r.Uint32())
				}
			}
			s := EncodeBase2048(b)
			if want := (8*n + 10) / 11; utf8.RuneCountInString(s) != want {
				t.Errorf("n=%d %s: %d chars, want %d", n, fill, utf8.RuneCountInString(s), want)
			}
			for _, c := range s {
				if c < 0x4E00 || c > 0x5607 {
					t.Fatalf("n=%d: character %U outside the alphabet", n, c)
				}
			}
			got, err := DecodeBase2048(s)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("n=%d %s: round trip %x -> %q -> %x, %v", n, fill, b, s, got, err)
			}
		}
	}
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	if got, err := DecodeBase2048(EncodeBase2048(big)); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("100k round trip failed: %v", err)
	}
}

func TestBase2048Known(t *testing.T) {
	// Fixed vectors pin the alphabet forever.
	tests := []struct {
		in   []byte
		want string
	}{
		{nil, ""},
		{[]byte{0}, "\u4E00"}, // 8 bits + 3 zero pad -> 0
		{[]byte{0xff}, string(rune(0x4E00 + 0x7f8))}, // 11111111 000
		{[]byte{0xff, 0xff}, string(rune(0x4E00+0x7ff)) + string(rune(0x4E00+0x7c0))},
		// 3 bytes = 24 bits = 2*11 + 2 -> tail with 2 bits (11) + 1 pad.
		{[]byte{0xff, 0xff, 0xff}, string(rune(0x4E00+0x7ff)) + string(rune(0x4E00+0x7ff)) + string(rune(0x5600+6))},
	}
	for _, tt := range tests {
		if got := EncodeBase2048(tt.in); got != tt.want {
			t.Errorf("EncodeBase2048(%x) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBase2048DecodeErrors(t *testing.T) {
	tests := map[string]string{
		"ascii":            "abc",
		"foreign CJK":      "\u5608",
		"before alphabet":  "\u4DFF",
		"invalid utf-8":    "\xff",
		"tail not last":    "\u5600\u4E00",
		"tail alone":       "\u5600",             // 3 bits cannot be a byte
		"nonzero padding":  "\u4E01",             // 1 byte + 3 pad bits, pad = 001
		"tail nonzero pad": "\u4E00\u4E00\u5601", // pad bit set
		"mixed":            "\u4E00 \u4E00",
	}
	for name, s := range tests {
		if b, err := DecodeBase2048(s); !errors.Is(err, ErrBase2048) {
			t.Errorf("%s: DecodeBase2048(%q) = %x, %v; want ErrBase2048", name, s, b, err)
		}
	}
}

func FuzzBase2048(f *testing.F) {
	f.Add([]byte{}, "")
	f.Add([]byte{1, 2, 3}, "\u4E00\u5600")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		enc := EncodeBase2048(b)
		got, err := DecodeBase2048(enc)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip %x: %v", b, err)
		}
		// Arbitrary strings: decoding never panics, and whatever decodes
		// re-encodes to the same string (one encoding per byte string).
		if d, err := DecodeBase2048(s); err == nil && EncodeBase2048(d) != s {
			t.Fatalf("%q decodes to %x, which encodes to %q", s, d, EncodeBase2048(d))
		}
	})
}

func TestEncodeOutput(t *testing.T) {
	in := []byte("hi\xff")
	if got := EncodeOutput(v1.EncodingUTF8, in); got != "hi\uFFFD" {
		t.Errorf("utf-8: %q", got)
	}
	if got := EncodeOutput(v1.EncodingBase64, in); got != base64.StdEncoding.EncodeToString(in) {
		t.Errorf("base64: %q", got)
	}
	if got := EncodeOutput("", in); got != "aGn/" {
		t.Errorf("default: %q", got)
	}
	if got, _ := DecodeBase2048(EncodeOutput(v1.EncodingBase2048, in)); !bytes.Equal(got, in) {
		t.Errorf("base2048: %x", got)
	}
}

func BenchmarkLossyUTF8(b *testing.B) {
	valid := bytes.Repeat([]byte("hello, wörld\n"), 5000)
	invalid := bytes.Repeat([]byte("hello, w\xffrld\n"), 5000)
	b.Run("valid", func(b *testing.B) {
		b.SetBytes(int64(len(valid)))
		for b.Loop() {
			_ = LossyUTF8(valid)
		}
	})
	b.Run("valid-baseline-string", func(b *testing.B) {
		b.SetBytes(int64(len(valid)))
		for b.Loop() {
			_ = string(valid)
		}
	})
	b.Run("invalid", func(b *testing.B) {
		b.SetBytes(int64(len(invalid)))
		for b.Loop() {
			_ = LossyUTF8(invalid)
		}
	})
}
