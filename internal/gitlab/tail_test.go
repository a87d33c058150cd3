package gitlab

import (
	"strings"
	"testing"
)

func TestTailWriterKeepsTheEnd(t *testing.T) {
	for _, max := range []int64{1, 7, 64, 1000} {
		w := &tailWriter{max: max}
		var all strings.Builder
		for i := range 200 {
			chunk := strings.Repeat(string(rune('a'+i%26)), i%13)
			all.WriteString(chunk)
			w.Write([]byte(chunk))
		}
		want := all.String()
		if int64(len(want)) > max {
			want = want[int64(len(want))-max:]
		}
		if got := string(w.bytes()); got != want {
			t.Errorf("max %d: got %q, want %q", max, got, want)
		}
		if int64(cap(w.buf)) > 4*max+64 {
			t.Errorf("max %d: buffer grew to %d", max, cap(w.buf))
		}
	}
}
