package v1

import (
	"errors"
	"fmt"
	"math"
	"math/big"
)

// ErrBadQuantity is wrapped by every error ParseQuantity returns.
var ErrBadQuantity = errors.New("bad quantity")

// maxQuantityLen bounds the length of a quantity string, so parsing stays
// cheap whatever the input.
const maxQuantityLen = 64

// maxQuantityExp bounds the decimal exponent of the "1e3" form.
const maxQuantityExp = 40

// QuantityValue is a parsed Quantity: an exact rational number. The zero
// value is 0. It is immutable; copies share nothing that changes.
type QuantityValue struct {
	r *big.Rat // nil means zero; never modified after ParseQuantity
}

var quantityMultipliers = []struct {
	suffix string
	mult   *big.Rat
}{
	// Two-letter binary suffixes first, so "Ei" is not read as "E".
	{"Ki", new(big.Rat).SetInt64(1 << 10)},
	{"Mi", new(big.Rat).SetInt64(1 << 20)},
	{"Gi", new(big.Rat).SetInt64(1 << 30)},
	{"Ti", new(big.Rat).SetInt64(1 << 40)},
	{"Pi", new(big.Rat).SetInt64(1 << 50)},
	{"Ei", new(big.Rat).SetInt64(1 << 60)},
	{"k", new(big.Rat).SetInt64(1e3)},
	{"M", new(big.Rat).SetInt64(1e6)},
	{"G", new(big.Rat).SetInt64(1e9)},
	{"T", new(big.Rat).SetInt64(1e12)},
	{"P", new(big.Rat).SetInt64(1e15)},
	{"E", new(big.Rat).SetInt64(1e18)},
	{"m", big.NewRat(1, 1000)},
}

// ParseQuantity parses a Kubernetes-style quantity: an optional sign, an
// integer or decimal ("2", "1.5", ".5"), then at most one of a binary
// suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix (k M G T P E), the milli
// suffix m, or a decimal exponent ("1e3", "2.5E-3"). "1E" is one exa.
// Values whose magnitude exceeds the int64 range are rejected. Every error
// wraps ErrBadQuantity.
func ParseQuantity(s string) (QuantityValue, error) {
	bad := func(why string) (QuantityValue, error) {
		return QuantityValue{}, fmt.Errorf("%w %q: %s", ErrBadQuantity, s, why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > maxQuantityLen {
		return QuantityValue{}, fmt.Errorf("%w: longer than %d bytes", ErrBadQuantity, maxQuantityLen)
	}
	rest := s
	neg := false
	if rest[0] == '+' || rest[0] == '-' {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	// Mantissa: digits, optional point, digits; at least one digit.
	intEnd := 0
	for intEnd < len(rest) && isDigit(rest[intEnd]) {
		intEnd++
	}
	intPart := rest[:intEnd]
	rest = rest[intEnd:]
	fracPart := ""
	if rest != "" && rest[0] == '.' {
		rest = rest[1:]
		fracEnd := 0
		for fracEnd < len(rest) && isDigit(rest[fracEnd]) {
			fracEnd++
		}
		fracPart = rest[:fracEnd]
		rest = rest[fracEnd:]
	}
	if intPart == "" && fracPart == "" {
		return bad("expected a number")
	}
	mant, ok := new(big.Int).SetString(intPart+fracPart, 10)
	if !ok {
		return bad("expected a number")
	}
	v := new(big.Rat).SetFrac(mant, pow10(len(fracPart)))

	switch {
	case rest == "":
	case (rest[0] == 'e' || rest[0] == 'E') && isExponent(rest[1:]):
		exp := 0
		digits := rest[1:]
		expNeg := false
		if digits[0] == '+' || digits[0] == '-' {
			expNeg = digits[0] == '-'
			digits = digits[1:]
		}
		for _, c := range []byte(digits) {
			exp = exp*10 + int(c-'0')
			if exp > maxQuantityExp {
				return bad("exponent out of range")
			}
		}
		if expNeg {
			v.Quo(v, new(big.Rat).SetInt(pow10(exp)))
		} else {
			v.Mul(v, new(big.Rat).SetInt(pow10(exp)))
		}
	default:
		found := false
		for _, m := range quantityMultipliers {
			if rest == m.suffix {
				v.Mul(v, m.mult)
				found = true
				break
			}
		}
		if !found {
			return bad(fmt.Sprintf("unknown suffix %q", rest))
		}
	}
	if neg {
		v.Neg(v)
	}
	abs := new(big.Rat).Abs(v)
	if abs.Cmp(new(big.Rat).SetInt64(math.MaxInt64)) > 0 {
		return bad("out of range")
	}
	if v.Sign() == 0 {
		return QuantityValue{}, nil
	}
	return QuantityValue{r: v}, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isExponent reports whether s is an optionally signed run of digits.
func isExponent(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// Parse parses q with ParseQuantity.
func (q Quantity) Parse() (QuantityValue, error) { return ParseQuantity(string(q)) }

func (q QuantityValue) rat() *big.Rat {
	if q.r == nil {
		return new(big.Rat)
	}
	return q.r
}

// Sign returns -1, 0 or +1.
func (q QuantityValue) Sign() int { return q.rat().Sign() }

// IsInteger reports whether q is a whole number.
func (q QuantityValue) IsInteger() bool { return q.rat().IsInt() }

// Int64 returns q rounded up (towards positive infinity) to an integer,
// e.g. bytes for a memory quantity. ParseQuantity guarantees it fits.
func (q QuantityValue) Int64() int64 {
	c := ceil(q.rat())
	if !c.IsInt64() { // unreachable for parsed values; saturate anyway
		if c.Sign() > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return c.Int64()
}

// MilliValue returns q×1000 rounded up, e.g. millicores for a CPU quantity
// ("500m" gives 500, "2" gives 2000). ok is false when it does not fit in
// an int64.
func (q QuantityValue) MilliValue() (milli int64, ok bool) {
	m := new(big.Rat).Mul(q.rat(), new(big.Rat).SetInt64(1000))
	c := ceil(m)
	if !c.IsInt64() {
		return 0, false
	}
	return c.Int64(), true
}

// Cmp compares q with o: -1, 0 or +1.
func (q QuantityValue) Cmp(o QuantityValue) int { return q.rat().Cmp(o.rat()) }

// String returns q as an exact decimal or fraction, e.g. "1536" or "1/10".
func (q QuantityValue) String() string { return q.rat().RatString() }

// ceil returns the smallest integer not less than r.
func ceil(r *big.Rat) *big.Int {
	num, den := r.Num(), r.Denom()
	quo, mod := new(big.Int).DivMod(num, den, new(big.Int)) // Euclidean: mod >= 0
	if mod.Sign() != 0 {
		quo.Add(quo, big.NewInt(1))
	}
	return quo
}
