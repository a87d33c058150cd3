// Package financedemo is a sample finance MCP server with fixed, made-up
// data for a few tickers. Tests and `agentbot demo` use it in place of the
// organisation's finance server; its figures are illustrative, not market
// data.
package financedemo

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// AsOf is the date every figure is "as of".
var asOf = time.Date(2025, time.June, 30, 0, 0, 0, 0, time.UTC)

type company struct {
	Name, Sector, Industry string
	Price, PrevClose       float64
	Volume                 int64
	SharesOut              float64 // millions
	EPS, Revenue, NetInc   float64 // EPS in USD; revenue and net income in USD billions (TTM)
	GrossMargin, DivYield  float64 // percent
	Beta                   float64
	FiscalYearEnd          string
}

// companies is the sample data. The figures are invented for the demo.
var companies = map[string]company{
	"AAPL":  {"Apple Inc.", "Technology", "Consumer Electronics", 205.17, 201.08, 53_800_000, 14_935, 6.43, 400.37, 97.29, 46.6, 0.48, 1.21, "September"},
	"MSFT":  {"Microsoft Corporation", "Technology", "Software", 497.41, 495.94, 21_600_000, 7_433, 12.93, 270.01, 96.64, 69.1, 0.67, 0.91, "June"},
	"NVDA":  {"NVIDIA Corporation", "Technology", "Semiconductors", 157.99, 158.62, 194_000_000, 24_387, 3.10, 148.51, 76.77, 70.1, 0.03, 1.76, "January"},
	"TSLA":  {"Tesla, Inc.", "Consumer Cyclical", "Auto Manufacturers", 317.66, 323.63, 76_700_000, 3_221, 1.75, 95.72, 6.11, 17.9, 0.00, 2.33, "December"},
	"GOOGL": {"Alphabet Inc.", "Communication Services", "Internet Content", 176.23, 178.53, 31_400_000, 12_100, 8.97, 359.71, 110.99, 58.9, 0.47, 1.01, "December"},
	"AMZN":  {"Amazon.com, Inc.", "Consumer Cyclical", "Internet Retail", 219.39, 223.30, 39_600_000, 10_610, 5.53, 650.31, 65.94, 49.2, 0.00, 1.31, "December"},
	"BRK.B": {"Berkshire Hathaway Inc. Class B", "Financial Services", "Insurance", 485.77, 482.83, 4_200_000, 2_157, 41.27, 370.21, 89.00, 24.3, 0.00, 0.84, "December"},
}

// Symbols lists the tickers the server knows, sorted.
func Symbols() []string {
	out := make([]string, 0, len(companies))
	for s := range companies {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// SymbolInput names a ticker.
type SymbolInput struct {
	Symbol string `json:"symbol" jsonschema:"ticker symbol, such as AAPL or BRK.B"`
}

// HistoryInput names a ticker and how many trading days to return.
type HistoryInput struct {
	Symbol string `json:"symbol" jsonschema:"ticker symbol, such as AAPL or BRK.B"`
	Days   int    `json:"days,omitempty" jsonschema:"number of trading days, 1 to 365 (default 30)"`
}

// Quote is a ticker's latest price.
type Quote struct {
	Symbol        string  `json:"symbol"`
	Name          string  `json:"name"`
	Currency      string  `json:"currency"`
	Price         float64 `json:"price"`
	Change        float64 `json:"change"`
	ChangePercent float64 `json:"change_percent"`
	PreviousClose float64 `json:"previous_close"`
	Volume        int64   `json:"volume"`
	MarketCapUSD  float64 `json:"market_cap_usd_billions"`
	AsOf          string  `json:"as_of"`
}

// Fundamentals are a company's key figures (trailing twelve months).
type Fundamentals struct {
	Symbol           string  `json:"symbol"`
	Name             string  `json:"name"`
	Sector           string  `json:"sector"`
	Industry         string  `json:"industry"`
	MarketCapUSD     float64 `json:"market_cap_usd_billions"`
	PERatio          float64 `json:"pe_ratio"`
	EPS              float64 `json:"eps_usd"`
	RevenueUSD       float64 `json:"revenue_usd_billions"`
	NetIncomeUSD     float64 `json:"net_income_usd_billions"`
	NetMarginPercent float64 `json:"net_margin_percent"`
	GrossMargin      float64 `json:"gross_margin_percent"`
	DividendYield    float64 `json:"dividend_yield_percent"`
	Beta             float64 `json:"beta"`
	FiscalYearEnd    string  `json:"fiscal_year_end"`
	AsOf             string  `json:"as_of"`
}

// PricePoint is one trading day.
type PricePoint struct {
	Date   string  `json:"date"`
	Open   float64 `json:"open"`
	High   float64 `json:"high"`
	Low    float64 `json:"low"`
	Close  float64 `json:"close"`
	Volume int64   `json:"volume"`
}

// PriceHistory is a ticker's daily prices, oldest first.
type PriceHistory struct {
	Symbol   string       `json:"symbol"`
	Currency string       `json:"currency"`
	Points   []PricePoint `json:"points"`
}

func lookup(symbol string) (string, company, error) {
	sym := strings.ToUpper(strings.TrimSpace(symbol))
	c, ok := companies[sym]
	if !ok {
		return sym, c, fmt.Errorf("unknown symbol %q; this server knows %s", symbol, strings.Join(Symbols(), ", "))
	}
	return sym, c, nil
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// GetQuote answers get_quote.
func GetQuote(symbol string) (Quote, error) {
	sym, c, err := lookup(symbol)
	if err != nil {
		return Quote{}, err
	}
	return Quote{
		Symbol: sym, Name: c.Name, Currency: "USD",
		Price: c.Price, PreviousClose: c.PrevClose,
		Change:        round2(c.Price - c.PrevClose),
		ChangePercent: round2((c.Price - c.PrevClose) / c.PrevClose * 100),
		Volume:        c.Volume,
		MarketCapUSD:  round2(c.Price * c.SharesOut / 1000),
		AsOf:          asOf.Format(time.DateOnly),
	}, nil
}

// GetFundamentals answers get_fundamentals.
func GetFundamentals(symbol string) (Fundamentals, error) {
	sym, c, err := lookup(symbol)
	if err != nil {
		return Fundamentals{}, err
	}
	return Fundamentals{
		Symbol: sym, Name: c.Name, Sector: c.Sector, Industry: c.Industry,
		MarketCapUSD:     round2(c.Price * c.SharesOut / 1000),
		PERatio:          round2(c.Price / c.EPS),
		EPS:              c.EPS,
		RevenueUSD:       c.Revenue,
		NetIncomeUSD:     c.NetInc,
		NetMarginPercent: round2(c.NetInc / c.Revenue * 100),
		GrossMargin:      c.GrossMargin,
		DividendYield:    c.DivYield,
		Beta:             c.Beta,
		FiscalYearEnd:    c.FiscalYearEnd,
		AsOf:             asOf.Format(time.DateOnly),
	}, nil
}

// GetPriceHistory answers get_price_history: a made-up but fixed daily
// series (weekdays only) that ends at the quote's price on the as-of date.
func GetPriceHistory(symbol string, days int) (PriceHistory, error) {
	sym, c, err := lookup(symbol)
	if err != nil {
		return PriceHistory{}, err
	}
	if days == 0 {
		days = 30
	}
	if days < 1 || days > 365 {
		return PriceHistory{}, fmt.Errorf("days=%d: want 1 to 365", days)
	}
	h := fnv.New64a()
	h.Write([]byte(sym))
	state := h.Sum64() | 1
	next := func() float64 { // xorshift64: the same series on every run
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		return float64(state%20001)/10000 - 1 // [-1, 1]
	}
	points := make([]PricePoint, 0, days)
	last, day := c.Price, asOf
	for len(points) < days {
		if wd := day.Weekday(); wd != time.Saturday && wd != time.Sunday {
			move := next() * 0.02 * c.Beta
			open := last / (1 + move)
			high := math.Max(open, last) * (1 + math.Abs(next())*0.006)
			low := math.Min(open, last) * (1 - math.Abs(next())*0.006)
			vol := int64(float64(c.Volume) * (1 + next()*0.3))
			points = append(points, PricePoint{Date: day.Format(time.DateOnly),
				Open: round2(open), High: round2(high), Low: round2(low), Close: round2(last), Volume: vol})
			last = open * (1 + next()*0.004)
		}
		day = day.AddDate(0, 0, -1)
	}
	slices.Reverse(points)
	return PriceHistory{Symbol: sym, Currency: "USD", Points: points}, nil
}

// NewServer returns the sample finance MCP server with its three tools.
func NewServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "agentbot-finance-demo", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "get_quote",
		Description: "Latest price of a stock: price, change since the previous close, volume and market capitalisation.",
	}, func(_ context.Context, _ *mcp.CallToolRequest, in SymbolInput) (*mcp.CallToolResult, Quote, error) {
		q, err := GetQuote(in.Symbol)
		return nil, q, err
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "get_fundamentals",
		Description: "Key figures of a company (trailing twelve months): sector, market cap, P/E, EPS, revenue, net income, margins, dividend yield, beta.",
	}, func(_ context.Context, _ *mcp.CallToolRequest, in SymbolInput) (*mcp.CallToolResult, Fundamentals, error) {
		f, err := GetFundamentals(in.Symbol)
		return nil, f, err
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "get_price_history",
		Description: "Daily open, high, low, close and volume of a stock for the last N trading days, oldest first.",
	}, func(_ context.Context, _ *mcp.CallToolRequest, in HistoryInput) (*mcp.CallToolResult, PriceHistory, error) {
		p, err := GetPriceHistory(in.Symbol, in.Days)
		return nil, p, err
	})
	return s
}

// Handler serves NewServer over streamable HTTP. With a verifier, every
// request needs a valid bearer token, and a refusal's WWW-Authenticate
// points at resourceMetadataURL (when not empty) for discovery.
func Handler(verifier auth.TokenVerifier, resourceMetadataURL string) http.Handler {
	server := NewServer()
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	if verifier != nil {
		h = auth.RequireBearerToken(verifier, &auth.RequireBearerTokenOptions{ResourceMetadataURL: resourceMetadataURL})(h)
	}
	return h
}
