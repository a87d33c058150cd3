package agent

import "strings"

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	Input      float64 `json:"input"`
	Output     float64 `json:"output"`
	CacheRead  float64 `json:"cache_read"`
	CacheWrite float64 `json:"cache_write"`
}

// Cost is the estimated price of u in US dollars.
func (p Price) Cost(u Usage) float64 {
	return (float64(u.InputTokens)*p.Input +
		float64(u.OutputTokens)*p.Output +
		float64(u.CacheReadTokens)*p.CacheRead +
		float64(u.CacheWriteTokens)*p.CacheWrite) / 1e6
}

// Prices maps a model id to its price. Keys are base model ids
// ("anthropic.claude-sonnet-4-6"); Lookup also finds them behind a
// cross-region inference profile prefix ("us.", "eu.", "global.", …), a
// version suffix or an ARN.
type Prices map[string]Price

// DefaultPrices are Bedrock's on-demand list prices for the current Claude
// models (US dollars per million tokens; cache writes are 5-minute writes).
// They are estimates: regional inference profiles may carry a premium over
// global ones, and prices change — override them with AGENTBOT_PRICE_*.
func DefaultPrices() Prices {
	sonnet := Price{Input: 3, Output: 15, CacheRead: 0.30, CacheWrite: 3.75}
	opus := Price{Input: 5, Output: 25, CacheRead: 0.50, CacheWrite: 6.25}
	haiku := Price{Input: 1, Output: 5, CacheRead: 0.10, CacheWrite: 1.25}
	return Prices{
		"anthropic.claude-sonnet-4-6": sonnet,
		"anthropic.claude-sonnet-4-5": sonnet,
		"anthropic.claude-sonnet-4":   sonnet,
		"anthropic.claude-opus-4-6":   opus,
		"anthropic.claude-opus-4-5":   opus,
		"anthropic.claude-opus-4-1":   {Input: 15, Output: 75, CacheRead: 1.50, CacheWrite: 18.75},
		"anthropic.claude-haiku-4-5":  haiku,
		"anthropic.claude-3-5-haiku":  {Input: 0.80, Output: 4, CacheRead: 0.08, CacheWrite: 1},
		"anthropic.claude-3-7-sonnet": sonnet,
		"amazon.nova-pro-v1":          {Input: 0.80, Output: 3.20, CacheRead: 0.20},
		"amazon.nova-lite-v1":         {Input: 0.06, Output: 0.24, CacheRead: 0.015},
		"anthropic.claude-opus-4":     {Input: 15, Output: 75, CacheRead: 1.50, CacheWrite: 18.75},
		"anthropic.claude-3-haiku":    {Input: 0.25, Output: 1.25},
		"anthropic.claude-3-5-sonnet": sonnet,
	}
}

// Lookup finds the price of modelID: an exact key first, then the longest
// key that the id contains (so "us.anthropic.claude-sonnet-4-6" and
// "arn:aws:bedrock:…/global.anthropic.claude-opus-4-6-v1" both resolve).
func (p Prices) Lookup(modelID string) (Price, bool) {
	if pr, ok := p[modelID]; ok {
		return pr, true
	}
	best, found := "", false
	var price Price
	for k, v := range p {
		if len(k) > len(best) && strings.Contains(modelID, k) {
			best, price, found = k, v, true
		}
	}
	return price, found
}
