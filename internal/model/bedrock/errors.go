package bedrock

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// Conditions callers branch on (errors.Is). Each error Converse returns for
// them also says what to fix.
var (
	// ErrAccessDenied: the identity may not invoke the model, or model
	// access was never granted in the account.
	ErrAccessDenied = errors.New("access denied")
	// ErrModelNotFound: the model id is wrong, not offered in the region, or
	// needs an inference profile.
	ErrModelNotFound = errors.New("model not available")
	// ErrCredentials: the AWS credentials are missing, invalid or expired.
	ErrCredentials = errors.New("AWS credentials rejected")
	// ErrThrottled: still throttled after every retry.
	ErrThrottled = errors.New("throttled")
	// ErrRegion: the Bedrock endpoint for the region cannot be reached.
	ErrRegion = errors.New("bedrock endpoint unreachable")
)

// Permanent reports whether retrying the same call later cannot help (a
// configuration problem rather than a passing condition).
func Permanent(err error) bool {
	return errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrModelNotFound) ||
		errors.Is(err, ErrCredentials) || errors.Is(err, ErrRegion)
}

// explain turns an SDK error into one that says what to fix.
func (m *Model) explain(err error) error {
	id, region := m.opts.ModelID, m.region
	where := fmt.Sprintf("bedrock converse with model %s in %s", id, region)

	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg := ae.ErrorMessage()
		switch ae.ErrorCode() {
		case "AccessDeniedException":
			return fmt.Errorf("%s: %w: %s (the AWS identity needs bedrock:InvokeModel on the model and, for a cross-region profile, on the inference profile and the model in every region it routes to; Anthropic models also need model access granted once in the Bedrock console): %w",
				where, ErrAccessDenied, msg, err)
		case "ResourceNotFoundException":
			return fmt.Errorf("%s: %w: %s (check MODEL_ID; the model may not be offered in %s — use a cross-region inference profile such as %s): %w",
				where, ErrModelNotFound, msg, region, DefaultModelID(region), err)
		case "ValidationException":
			lower := strings.ToLower(msg)
			switch {
			case strings.Contains(lower, "on-demand throughput"), strings.Contains(lower, "inference profile"):
				return fmt.Errorf("%s: %w: %s (this model is served only through an inference profile: set MODEL_ID to e.g. %s): %w",
					where, ErrModelNotFound, msg, DefaultModelID(region), err)
			case strings.Contains(lower, "model identifier is invalid"), strings.Contains(lower, "model id"), strings.Contains(lower, "end of its life"):
				return fmt.Errorf("%s: %w: %s (%s): %w", where, ErrModelNotFound, msg, modelHint(id, region), err)
			}
		case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
			"InvalidClientTokenId", "ExpiredToken", "IncompleteSignature":
			return fmt.Errorf("%s: %w: %s (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE, or the role's web identity): %w",
				where, ErrCredentials, msg, err)
		case "ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException":
			return fmt.Errorf("%s: %w after %d attempts: %s (ask for a higher Bedrock quota, use a cross-region inference profile, or run fewer jobs at once): %w",
				where, ErrThrottled, m.opts.MaxAttempts, msg, err)
		}
		return fmt.Errorf("%s: %w", where, err)
	}

	var re *retry.MaxAttemptsError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%s: %w: %v (check AWS_REGION=%q — Bedrock is offered only in some regions — or AWS_ENDPOINT_URL_BEDROCK_RUNTIME): %w",
			where, ErrRegion, dnsErr, region, err)
	case errors.As(err, &re):
		return fmt.Errorf("%s: gave up after %d attempts: %w", where, re.Attempt, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// modelHint explains an invalid model id: an inference-profile prefix of
// another geography than the region's is the usual cause.
func modelHint(id, region string) string {
	geo := map[string]string{"us.": "us-", "eu.": "eu-", "apac.": "ap-", "jp.": "ap-northeast-", "au.": "ap-southeast-", "ca.": "ca-", "us-gov.": "us-gov-"}
	for prefix, regionPrefix := range geo {
		if strings.HasPrefix(id, prefix) && !strings.HasPrefix(region, regionPrefix) {
			return fmt.Sprintf("the inference profile %q serves %s* regions but AWS_REGION is %s: use %s or a region of that geography",
				id, regionPrefix, region, DefaultModelID(region))
		}
	}
	return fmt.Sprintf("check MODEL_ID: the model may be retired or not offered in %s; a current choice is %s", region, DefaultModelID(region))
}
