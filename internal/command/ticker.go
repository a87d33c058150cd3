package command

// Ticker shape: a root of 1–10 letters or digits, then optionally one class or
// exchange suffix of 1–4 letters or digits after "." or "-": AAPL, BRK.B,
// 7203.T, RDS-A, 0700.HK, BTC-USD. Index symbols (^GSPC) and slash forms
// (BRK/B) are not accepted.
const (
	maxTickerRoot   = 10
	maxTickerSuffix = 4
)

// NormalizeTicker upper-cases s and reports whether it has the shape of a
// ticker symbol. One leading "$" (a cashtag, "$AAPL") is dropped.
func NormalizeTicker(s string) (string, bool) {
	if len(s) > 0 && s[0] == '$' {
		s = s[1:]
	}
	if s == "" || len(s) > maxTickerRoot+1+maxTickerSuffix {
		return "", false
	}
	b := make([]byte, len(s))
	root, suffix, sep := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
			fallthrough
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			if sep {
				suffix++
			} else {
				root++
			}
		case c == '.' || c == '-':
			if sep || root == 0 {
				return "", false
			}
			sep = true
		default:
			return "", false
		}
		b[i] = c
	}
	if root > maxTickerRoot || suffix > maxTickerSuffix || (sep && suffix == 0) {
		return "", false
	}
	return string(b), true
}
