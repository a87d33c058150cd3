package command

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var (
	defaults = Options{}
	withBot  = Options{BotUsername: "agentbot"}
	custom   = Options{CustomVerbs: []string{"compare", " Earnings "}}
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		note string
		opt  Options
		want Command
		// replyHas lists substrings the reply must contain (Help and Usage).
		replyHas []string
	}{
		// Not for us.
		{name: "empty", note: "", want: Command{Kind: Ignore}},
		{name: "blank", note: " \n\t\r\n ", want: Command{Kind: Ignore}},
		{name: "plain comment", note: "Looks good to me, thanks!", want: Command{Kind: Ignore}},
		{name: "command later in the line", note: "please /agent help", want: Command{Kind: Ignore}},
		{name: "command on a later line", note: "Hi team\n/agent help", want: Command{Kind: Ignore}},
		{name: "longer word", note: "/agentfoo help", want: Command{Kind: Ignore}},
		{name: "prefix then punctuation", note: "/agent: help", want: Command{Kind: Ignore}},
		{name: "slash space", note: "/ agent help", want: Command{Kind: Ignore}},
		{name: "block quote", note: "> /agent analyze AAPL", want: Command{Kind: Ignore}},
		{name: "nested quote", note: ">> /agent help", want: Command{Kind: Ignore}},
		{name: "inline code", note: "`/agent help`", want: Command{Kind: Ignore}},
		{name: "fenced code", note: "```\n/agent help\n```", want: Command{Kind: Ignore}},
		{name: "tilde fence", note: "~~~sh\n/agent help\n~~~", want: Command{Kind: Ignore}},
		{name: "indented code, spaces", note: "    /agent help", want: Command{Kind: Ignore}},
		{name: "indented code, tab", note: "\t/agent help", want: Command{Kind: Ignore}},
		{name: "indented code, space and tab", note: "  \t/agent help", want: Command{Kind: Ignore}},
		{name: "html comment", note: "<!-- /agent help -->", want: Command{Kind: Ignore}},
		{name: "zero-width space first", note: "\u200b/agent help", want: Command{Kind: Ignore}},
		{name: "mention without bot configured", note: "@agentbot help", want: Command{Kind: Ignore}},
		{name: "other user mentioned", note: "@alice help", opt: withBot, want: Command{Kind: Ignore}},
		{name: "longer username", note: "@agentbot-dev help", opt: withBot, want: Command{Kind: Ignore}},
		{name: "default prefix when configured otherwise", note: "/agent help", opt: Options{Prefix: "/bot"}, want: Command{Kind: Ignore}},

		// Help.
		{name: "help", note: "/agent help", want: Command{Kind: Help, Verb: "help", Request: "help"}, replyHas: []string{"`/agent analyze <TICKER>`"}},
		{name: "upper case", note: "/AGENT HELP", want: Command{Kind: Help, Verb: "help", Request: "HELP"}},
		{name: "leading space and blank lines", note: "\n \r\n   /agent help  ", want: Command{Kind: Help, Verb: "help", Request: "help"}},
		{name: "crlf", note: "/agent help\r\n", want: Command{Kind: Help, Verb: "help", Request: "help"}},
		{name: "tab after prefix", note: "/agent\thelp", want: Command{Kind: Help, Verb: "help", Request: "help"}},
		{name: "no-break space after prefix", note: "/agent\u00a0help", want: Command{Kind: Help, Verb: "help", Request: "help"}},
		{name: "help on a verb", note: "/agent help analyze", want: Command{Kind: Help, Verb: "help", Args: []string{"analyze"}, Request: "help analyze"}},
		{name: "mention", note: "@agentbot help", opt: withBot, want: Command{Kind: Help, Verb: "help", Request: "help"}, replyHas: []string{"`@agentbot`"}},
		{name: "mention, any case, colon", note: "@AgentBot: help", opt: withBot, want: Command{Kind: Help, Verb: "help", Request: "help"}},
		{name: "mention with comma", note: "@agentbot, help", opt: withBot, want: Command{Kind: Help, Verb: "help", Request: "help"}},
		{name: "username given with @", note: "@agentbot help", opt: Options{BotUsername: "@agentbot"}, want: Command{Kind: Help, Verb: "help", Request: "help"}},
		{name: "prefix still works with bot", note: "/agent help", opt: withBot, want: Command{Kind: Help, Verb: "help", Request: "help"}},
		{name: "custom prefix", note: "/Bot help", opt: Options{Prefix: "/bot"}, want: Command{Kind: Help, Verb: "help", Request: "help"}, replyHas: []string{"`/bot analyze <TICKER>`"}},
		{name: "help lists custom verbs", note: "/agent help", opt: custom, want: Command{Kind: Help, Verb: "help", Request: "help"}, replyHas: []string{"`/agent compare`", "`/agent earnings`"}},

		// Analyze.
		{name: "analyze", note: "/agent analyze AAPL", want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"AAPL"}, Ticker: "AAPL", Request: "analyze AAPL"}},
		{name: "analyze class share, lower case", note: "/agent Analyze brk.b", want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"brk.b"}, Ticker: "BRK.B", Request: "Analyze brk.b"}},
		{name: "analyze tokyo", note: "/agent analyze 7203.T", want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"7203.T"}, Ticker: "7203.T", Request: "analyze 7203.T"}},
		{name: "analyze dash", note: "/agent analyze RDS-A", want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"RDS-A"}, Ticker: "RDS-A", Request: "analyze RDS-A"}},
		{name: "analyze cashtag", note: "/agent analyze $msft", want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"$msft"}, Ticker: "MSFT", Request: "analyze $msft"}},
		{name: "analyze quoted", note: `/agent analyze "AAPL"`, want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"AAPL"}, Ticker: "AAPL", Request: `analyze "AAPL"`}},
		{name: "analyse is an alias", note: "/agent analyse AAPL", want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"AAPL"}, Ticker: "AAPL", Request: "analyse AAPL"}},
		{name: "analyze via mention", note: "@agentbot analyze AAPL", opt: withBot, want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"AAPL"}, Ticker: "AAPL", Request: "analyze AAPL"}},
		{
			name: "analyze with context",
			note: "/agent analyze AAPL\n\nFocus on services margins.\n  - and buybacks\n\n",
			want: Command{Kind: Analyze, Verb: "analyze", Args: []string{"AAPL"}, Ticker: "AAPL", Request: "analyze AAPL", Context: "Focus on services margins.\n  - and buybacks"},
		},

		// Usage.
		{name: "prefix alone", note: "/agent", want: Command{Kind: Usage}, replyHas: []string{"Tell me what to do", "`/agent analyze AAPL`"}},
		{name: "prefix and spaces", note: "  /agent   ", want: Command{Kind: Usage}},
		{name: "request on the next line", note: "/agent\nsummarise Q3", want: Command{Kind: Usage, Context: "summarise Q3"}, replyHas: []string{"same line"}},
		{name: "mention alone", note: "@agentbot", opt: withBot, want: Command{Kind: Usage}, replyHas: []string{"`@agentbot analyze AAPL`"}},
		{name: "analyze without ticker", note: "/agent analyze", want: Command{Kind: Usage, Verb: "analyze", Args: []string{}, Request: "analyze"}, replyHas: []string{"needs a ticker", "`/agent analyze AAPL`"}},
		{name: "analyze bad ticker", note: "/agent analyze $$$", want: Command{Kind: Usage, Verb: "analyze", Args: []string{"$$$"}, Request: "analyze $$$"}, replyHas: []string{"`$$$` is not a ticker"}},
		{name: "analyze two tickers", note: "/agent analyze AAPL MSFT", want: Command{Kind: Usage, Verb: "analyze", Args: []string{"AAPL", "MSFT"}, Request: "analyze AAPL MSFT"}, replyHas: []string{"exactly one ticker", "got 2 words"}},
		{name: "analyze a sentence", note: "/agent analyze Apple's services business", want: Command{Kind: Usage, Verb: "analyze", Args: []string{"Apple's", "services", "business"}, Request: "analyze Apple's services business"}, replyHas: []string{"in your own words"}},
		{name: "typo, one word", note: "/agent hepl", want: Command{Kind: Usage, Verb: "hepl", Args: []string{}, Request: "hepl"}, replyHas: []string{"Did you mean `help`"}},
		{name: "typo with ticker", note: "/agent analzye AAPL", want: Command{Kind: Usage, Verb: "analzye", Args: []string{"AAPL"}, Request: "analzye AAPL"}, replyHas: []string{"Did you mean `analyze`", "`/agent analyze AAPL`"}},
		{name: "typo of the alias", note: "/agent analise AAPL", want: Command{Kind: Usage, Verb: "analise", Args: []string{"AAPL"}, Request: "analise AAPL"}, replyHas: []string{"Did you mean `analyze`"}},
		{name: "typo without ticker", note: "/agent analzye", want: Command{Kind: Usage, Verb: "analzye", Args: []string{}, Request: "analzye"}, replyHas: []string{"`/agent analyze AAPL`"}},
		{name: "typo of review", note: "/agent reveiw", want: Command{Kind: Usage, Verb: "reveiw", Args: []string{}, Request: "reveiw"}, replyHas: []string{"Did you mean `review`"}},
		{name: "typo of diagnose", note: "/agent Diagnoes", want: Command{Kind: Usage, Verb: "diagnoes", Args: []string{}, Request: "Diagnoes"}, replyHas: []string{"Did you mean `diagnose`"}},
		{name: "typo of a custom verb", note: "/agent comapre", opt: custom, want: Command{Kind: Usage, Verb: "comapre", Args: []string{}, Request: "comapre"}, replyHas: []string{"Did you mean `compare`"}},
		{name: "typo via mention", note: "@agentbot hlep", opt: withBot, want: Command{Kind: Usage, Verb: "hlep", Args: []string{}, Request: "hlep"}, replyHas: []string{"`@agentbot help`"}},

		// Free-form.
		{
			name: "free-form",
			note: "/agent summarise Q3 earnings for MSFT",
			want: Command{Kind: Freeform, Verb: "summarise", Args: []string{"Q3", "earnings", "for", "MSFT"}, Request: "summarise Q3 earnings for MSFT"},
		},
		{
			name: "free-form keeps the request as typed",
			note: "  /agent   What's Apple's P/E vs. #7's \"peer set\"?  \nUse output/peers.csv",
			want: Command{Kind: Freeform, Verb: "what's", Args: []string{"Apple's", "P/E", "vs.", "#7's", "peer set?"}, Request: "What's Apple's P/E vs. #7's \"peer set\"?", Context: "Use output/peers.csv"},
		},
		{name: "help me …", note: "/agent help me write a Q3 summary", want: Command{Kind: Freeform, Verb: "help", Args: []string{"me", "write", "a", "Q3", "summary"}, Request: "help me write a Q3 summary"}},
		{name: "one word not close to a verb", note: "/agent hello", want: Command{Kind: Freeform, Verb: "hello", Args: []string{}, Request: "hello"}},
		{name: "near a verb but a sentence", note: "/agent helm chart for the API", want: Command{Kind: Freeform, Verb: "helm", Args: []string{"chart", "for", "the", "API"}, Request: "helm chart for the API"}},
		{name: "near help with one word", note: "/agent helm charts", want: Command{Kind: Freeform, Verb: "helm", Args: []string{"charts"}, Request: "helm charts"}},
		{name: "typo of analyze with a non-ticker", note: "/agent analzye Apple's margins", want: Command{Kind: Freeform, Verb: "analzye", Args: []string{"Apple's", "margins"}, Request: "analzye Apple's margins"}},
		{name: "custom typo with args stays free-form", note: "/agent comapre AAPL MSFT", opt: custom, want: Command{Kind: Freeform, Verb: "comapre", Args: []string{"AAPL", "MSFT"}, Request: "comapre AAPL MSFT"}},

		// Review, diagnose, custom.
		{name: "review", note: "/agent review", want: Command{Kind: Review, Verb: "review", Args: []string{}, Request: "review"}},
		{name: "review with focus", note: "/agent Review 'the numbers' only", want: Command{Kind: Review, Verb: "review", Args: []string{"the numbers", "only"}, Request: "Review 'the numbers' only"}},
		{name: "diagnose", note: "/agent diagnose", want: Command{Kind: Diagnose, Verb: "diagnose", Args: []string{}, Request: "diagnose"}},
		{name: "custom", note: "/agent Compare AAPL MSFT", opt: custom, want: Command{Kind: Custom, Verb: "compare", Args: []string{"AAPL", "MSFT"}, Request: "Compare AAPL MSFT"}},
		{name: "custom with spaces in config", note: "/agent earnings", opt: custom, want: Command{Kind: Custom, Verb: "earnings", Args: []string{}, Request: "earnings"}},
		{name: "custom cannot shadow built-in", note: "/agent help", opt: Options{CustomVerbs: []string{"help"}}, want: Command{Kind: Help, Verb: "help", Request: "help"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse(tt.note, tt.opt)
			reply := got.Reply
			got.Reply = ""
			if !equal(got, tt.want) {
				t.Errorf("Parse(%q)\n got %#v\nwant %#v", tt.note, got, tt.want)
			}
			wantReply := tt.want.Kind == Help || tt.want.Kind == Usage
			if wantReply != (reply != "") {
				t.Errorf("Parse(%q): reply %q, want a reply: %v", tt.note, reply, wantReply)
			}
			for _, s := range tt.replyHas {
				if !strings.Contains(reply, s) {
					t.Errorf("Parse(%q): reply does not contain %q:\n%s", tt.note, s, reply)
				}
			}
		})
	}
}

// equal compares commands, treating nil and empty Args alike.
func equal(a, b Command) bool {
	if len(a.Args) == 0 && len(b.Args) == 0 {
		a.Args, b.Args = nil, nil
	}
	return a.Kind == b.Kind && a.Verb == b.Verb && slices.Equal(a.Args, b.Args) && a.Ticker == b.Ticker &&
		a.Request == b.Request && a.Context == b.Context && a.Reply == b.Reply
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"a b\tc", []string{"a", "b", "c"}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`a 'b c' d`, []string{"a", "b c", "d"}},
		{`“smart quotes” x`, []string{"smart quotes", "x"}},
		{`‘single smart’`, []string{"single smart"}},
		{`name="Q3 report" x`, []string{"name=Q3 report", "x"}},
		{`"a"b c`, []string{"ab", "c"}},
		{`"" x`, []string{"", "x"}},
		{`what's Apple's P/E`, []string{"what's", "Apple's", "P/E"}},
		{`'tis unbalanced`, []string{"'tis", "unbalanced"}},
		{`say "unclosed`, []string{"say", `"unclosed`}},
		{`mid"word quote"`, []string{`mid"word`, `quote"`}},
		{`"esc \"q\" \\ \n"`, []string{`esc "q" \ \n`}},
		{`'no \' escapes'`, []string{`no \`, `escapes'`}},
		{`read C:\data\x.csv`, []string{"read", `C:\data\x.csv`}},
		{`issue #7 for MSFT`, []string{"issue", "#7", "for", "MSFT"}},
		{"tab\u00a0nbsp", []string{"tab", "nbsp"}},
		{"\xff\xfe bad utf8", []string{"\ufffd\ufffd", "bad", "utf8"}},
	}
	for _, tt := range tests {
		got := splitWords(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeTicker(t *testing.T) {
	good := map[string]string{
		"AAPL": "AAPL", "aapl": "AAPL", "BRK.B": "BRK.B", "brk.b": "BRK.B", "7203.T": "7203.T",
		"RDS-A": "RDS-A", "0700.HK": "0700.HK", "BTC-USD": "BTC-USD", "$TSLA": "TSLA", "F": "F",
		"ABCDEFGHIJ.ABCD": "ABCDEFGHIJ.ABCD",
	}
	for in, want := range good {
		if got, ok := NormalizeTicker(in); !ok || got != want {
			t.Errorf("NormalizeTicker(%q) = %q, %v; want %q, true", in, got, ok, want)
		}
	}
	bad := []string{
		"", "$", "$$$", "$$AAPL", "AAPL$", ".B", "BRK.", "BRK..B", "BRK.B.C", "A-B-C", "RDS-", "^GSPC",
		"BRK/B", "ÄPPL", "AAPL ", "ABCDEFGHIJK", "AAPL.ABCDE", "<script>", "a_b",
	}
	for _, in := range bad {
		if got, ok := NormalizeTicker(in); ok {
			t.Errorf("NormalizeTicker(%q) = %q, true; want false", in, got)
		}
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"help", "", 4}, {"", "help", 4}, {"help", "help", 0},
		{"hepl", "help", 1}, {"hlep", "help", 1}, {"analzye", "analyze", 1}, {"analise", "analyse", 1},
		{"hello", "help", 2}, {"ca", "abc", 3}, {"naïve", "naive", 1},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestReplyQuotesAreBounded(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	notes := []string{
		"/agent analyze " + long,
		"/agent analyze `@all`" + long,
		"/agent analyze \"a\nb\"",
		"/agent analyze \"`/close`\"",
		"/agent analyze \"\u202eevil\u200b\"",
	}
	for _, note := range notes {
		c := Parse(note, defaults)
		if c.Kind != Usage {
			t.Fatalf("Parse(%q).Kind = %v, want usage", note[:20], c.Kind)
		}
		if len(c.Reply) > 600 {
			t.Errorf("reply to a %d-byte note is %d bytes:\n%s", len(note), len(c.Reply), c.Reply)
		}
		first, _, _ := strings.Cut(c.Reply, "\n")
		if strings.Count(first, "`")%2 != 0 || strings.Contains(first, "``") {
			t.Errorf("user input broke out of its code span: %q", first)
		}
		if strings.ContainsAny(first, "\u202e\u200b") {
			t.Errorf("reply repeats invisible characters: %q", first)
		}
	}
	c := Parse("/agent "+strings.Repeat("é", 31), defaults)
	if c.Kind != Freeform {
		t.Errorf("a long single word: kind %v, want freeform", c.Kind)
	}
}

func TestHelpTextGolden(t *testing.T) {
	got := HelpText(Options{Prefix: "/agent", BotUsername: "agentbot", CustomVerbs: []string{"compare", "daily", "help"}}, []CustomHelp{
		{Verb: "Compare", Args: "<TICKER> <TICKER>", Description: "compare two companies | side by side"},
		{Verb: "weekly", Description: "a weekly note\nwith `code` in it"},
	})
	path := filepath.Join("testdata", "help.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("HelpText differs from %s (run with -update):\n%s", path, got)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Ignore: "ignore", Analyze: "analyze", Usage: "usage", Kind(42): "unknown", Kind(-1): "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "/agent", "/agent help", "/agent analyze AAPL", "/agent analyze $$$", "/agent analzye AAPL",
		"@agentbot: help", "/agent summarise \"Q3 earnings\" for 'MSFT'\ncontext\n", "    /agent help",
		"```\n/agent help\n```", "/agent “a” ‘b’ name=\"c d\" \\\"", "\xff/agent \xfe", "/AGENT HEPL",
		"/agent compare AAPL MSFT", "\r\n\t /agent\u00a0review x",
	} {
		f.Add(s)
	}
	opts := []Options{defaults, withBot, custom, {Prefix: "!ask", BotUsername: "@Bot", CustomVerbs: []string{"", "x", "a b"}}}
	f.Fuzz(func(t *testing.T, note string) {
		for _, opt := range opts {
			c := Parse(note, opt)
			if c.Kind < Ignore || c.Kind > Usage {
				t.Fatalf("kind %d out of range", c.Kind)
			}
			if c.Kind == Ignore && !equal(c, Command{Kind: Ignore}) {
				t.Fatalf("ignored note with fields set: %#v", c)
			}
			if (c.Kind == Help || c.Kind == Usage) != (c.Reply != "") {
				t.Fatalf("kind %v with reply %q", c.Kind, c.Reply)
			}
			if c.Kind == Usage && len(c.Reply) > 700 {
				t.Fatalf("usage reply of %d bytes", len(c.Reply))
			}
			if c.Kind == Analyze {
				if n, ok := NormalizeTicker(c.Ticker); !ok || n != c.Ticker {
					t.Fatalf("analyze with ticker %q", c.Ticker)
				}
			}
			if !strings.Contains(note, c.Request) || !strings.Contains(note, c.Context) {
				t.Fatalf("request %q or context %q not taken from the note", c.Request, c.Context)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	notes := []struct{ name, note string }{
		{"analyze", "/agent analyze AAPL"},
		{"freeform", "/agent summarise Q3 earnings for MSFT, and compare \"gross margin\" with last year's\nsome context\nmore"},
		{"plain", "Thanks, that looks right to me."},
		{"1MB", "/agent " + strings.Repeat("word \"quoted text\" ", 50_000)}, // GitLab's note limit
	}
	for _, n := range notes {
		b.Run(n.name, func(b *testing.B) {
			b.SetBytes(int64(len(n.note)))
			for b.Loop() {
				Parse(n.note, withBot)
			}
		})
	}
}
