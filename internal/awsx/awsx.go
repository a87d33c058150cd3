// Package awsx builds agentbot's AWS configuration: region, credentials
// (the default chain, or GitLab CI's OIDC token exchanged for a role with
// AssumeRoleWithWebIdentity), caller identity, and cached Secrets Manager
// look-ups.
package awsx

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"gitlab.com/agentbot/agentbot/internal/config"
)

// Load returns the AWS configuration for s.
//
// The SDK also reads the process environment and ~/.aws by itself
// (AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, …). So that what s
// says is what counts — in tests, s comes from a map, not the process —
// every setting s has is passed explicitly: region, the shared files (none
// when s has none), profile, static credentials, the endpoint. What s leaves
// open (no static keys, no web identity) falls to the SDK's default chain,
// which in production reads the same environment. One thing cannot be
// undone by an option: an AWS_PROFILE in the process environment when s has
// none (naming "default" instead fails when no file has it), so tests run
// with AWS_PROFILE unset.
//
// With s.WebIdentity(), the credentials come from AssumeRoleWithWebIdentity
// with the GitLab OIDC token, cached and renewed before they expire.
func Load(ctx context.Context, s config.AWS) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(s.Region),
		awsconfig.WithSharedConfigFiles(nonNil(s.ConfigFiles)),
		awsconfig.WithSharedCredentialsFiles(nonNil(s.CredentialsFiles)),
	}
	profile := "default"
	if s.Profile != "" {
		profile = s.Profile
		opts = append(opts, awsconfig.WithSharedConfigProfile(s.Profile))
	}
	if s.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, s.SessionToken)))
	}
	if s.Endpoint != "" {
		opts = append(opts, awsconfig.WithBaseEndpoint(s.Endpoint))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration (region %s, profile %s): %w", s.Region, profile, err)
	}
	if s.WebIdentity() {
		provider := stscreds.NewWebIdentityRoleProvider(
			NewSTS(cfg, s), s.RoleARN, identityToken(s.WebIdentityToken),
			func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = s.SessionName })
		cfg.Credentials = aws.NewCredentialsCache(&explainedProvider{p: provider, s: s})
	}
	return cfg, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// NewSTS returns an STS client, at AWS_ENDPOINT_URL_STS when set.
func NewSTS(cfg aws.Config, s config.AWS) *sts.Client {
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		if s.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(s.STSEndpoint)
		}
	})
}

// identityToken hands the SDK the OIDC token from the variable's value (no
// file, unlike AWS_WEB_IDENTITY_TOKEN_FILE).
type identityToken string

func (t identityToken) GetIdentityToken() ([]byte, error) { return []byte(t), nil }

// explainedProvider turns AccessDenied from AssumeRoleWithWebIdentity into
// what to change in the role's trust policy.
type explainedProvider struct {
	p aws.CredentialsProvider
	s config.AWS
}

func (e *explainedProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := e.p.Retrieve(ctx)
	if err == nil {
		return c, nil
	}
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "AccessDenied" || api.ErrorCode() == "InvalidIdentityToken") {
		return c, &TrustPolicyError{RoleARN: e.s.RoleARN, Claims: tokenClaims(e.s.WebIdentityToken), Code: api.ErrorCode(), Err: err}
	}
	return c, fmt.Errorf("assume %s with the GitLab OIDC token: %w", e.s.RoleARN, err)
}

// TrustPolicyError is AssumeRoleWithWebIdentity refusing GitLab's token:
// almost always the role's trust policy, whose sub condition must match the
// job's project and ref, and whose aud must match the token's audience.
type TrustPolicyError struct {
	RoleARN string
	Claims  Claims
	Code    string
	Err     error
}

// Claims are the GitLab OIDC token's claims that a trust policy matches.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
}

func (e *TrustPolicyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "assume %s with the GitLab OIDC token (GITLAB_OIDC_TOKEN): %s. ", e.RoleARN, e.Code)
	b.WriteString("The role's trust policy must allow sts:AssumeRoleWithWebIdentity for GitLab's OIDC provider, with conditions that match this job's token: ")
	b.WriteString(`"<host>:sub" like "project_path:group/project:ref_type:branch:ref:main" (use StringLike with * to allow more refs) and "<host>:aud" equal to the id_tokens aud in .gitlab-ci.yml`)
	if e.Claims.Subject != "" || len(e.Claims.Audience) > 0 {
		fmt.Fprintf(&b, ". This token has sub %q, aud %q, issuer %q", e.Claims.Subject, strings.Join(e.Claims.Audience, ","), e.Claims.Issuer)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *TrustPolicyError) Unwrap() error { return e.Err }

// tokenClaims reads (without verifying: that is STS's job) the claims of a
// JWT that a trust policy matches. Claims are not secret; the token is.
func tokenClaims(jwt string) Claims {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return Claims{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Claims{}
	}
	var raw struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(payload, &raw) != nil {
		return Claims{}
	}
	c := Claims{Issuer: raw.Iss, Subject: raw.Sub}
	var one string
	if json.Unmarshal(raw.Aud, &one) == nil {
		c.Audience = []string{one}
	} else {
		_ = json.Unmarshal(raw.Aud, &c.Audience)
	}
	return c
}

// Identity is who AWS says agentbot is.
type Identity struct {
	Account string
	ARN     string
	UserID  string
}

// CallerIdentity asks STS who the credentials belong to.
func CallerIdentity(ctx context.Context, cfg aws.Config, s config.AWS) (Identity, error) {
	out, err := NewSTS(cfg, s).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("get the AWS caller identity: %w", err)
	}
	return Identity{Account: aws.ToString(out.Account), ARN: aws.ToString(out.Arn), UserID: aws.ToString(out.UserId)}, nil
}
