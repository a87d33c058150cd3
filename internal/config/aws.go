package config

import (
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// DefaultRegion is the AWS region used when neither AWS_REGION nor
// AWS_DEFAULT_REGION is set.
const DefaultRegion = "us-east-1"

// AWS is how agentbot reaches AWS: region, credentials, and the GitLab CI
// OIDC role. This file is the only place that reads AWS_REGION; other areas
// (the model) take the region from here.
type AWS struct {
	// Region is AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1.
	Region string

	// RoleARN (AWS_ROLE_ARN) and WebIdentityToken (GITLAB_OIDC_TOKEN, the
	// variable a CI job's id_tokens fills): when both are set agentbot
	// assumes the role itself with AssumeRoleWithWebIdentity.
	RoleARN          string
	WebIdentityToken string
	// SessionName names the assumed-role session: agentbot-<CI_JOB_ID>.
	SessionName string

	// Static credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// AWS_SESSION_TOKEN), used when set.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Profile is AWS_PROFILE; empty means the default profile.
	Profile string
	// ConfigFiles and CredentialsFiles are the shared files the SDK may read:
	// AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, else the ones under
	// $HOME/.aws; none when HOME is unset.
	ConfigFiles      []string
	CredentialsFiles []string

	// Endpoint overrides: AWS_ENDPOINT_URL for every service, and the
	// service-specific AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_SECRETS_MANAGER.
	Endpoint               string
	STSEndpoint            string
	SecretsManagerEndpoint string

	// SecretTTL (AGENTBOT_SECRET_TTL, default 15m) is how long a secret read
	// from Secrets Manager is kept before it is read again.
	SecretTTL time.Duration
}

// LoadAWS reads the AWS settings.
func LoadAWS(get Getenv) (AWS, error) {
	r := newReader(get)
	a := AWS{
		Region:                 r.str("AWS_REGION", r.str("AWS_DEFAULT_REGION", DefaultRegion)),
		RoleARN:                r.str("AWS_ROLE_ARN", ""),
		WebIdentityToken:       r.str("GITLAB_OIDC_TOKEN", ""),
		SessionName:            "agentbot",
		AccessKeyID:            r.str("AWS_ACCESS_KEY_ID", ""),
		SecretAccessKey:        r.str("AWS_SECRET_ACCESS_KEY", ""),
		SessionToken:           r.str("AWS_SESSION_TOKEN", ""),
		Profile:                r.str("AWS_PROFILE", ""),
		Endpoint:               r.str("AWS_ENDPOINT_URL", ""),
		STSEndpoint:            r.str("AWS_ENDPOINT_URL_STS", ""),
		SecretsManagerEndpoint: r.str("AWS_ENDPOINT_URL_SECRETS_MANAGER", ""),
		SecretTTL:              r.duration("AGENTBOT_SECRET_TTL", 15*time.Minute),
	}
	if id := r.str("CI_JOB_ID", ""); id != "" {
		a.SessionName = "agentbot-" + id
	}
	home := r.str("HOME", "")
	if f := r.str("AWS_CONFIG_FILE", ""); f != "" {
		a.ConfigFiles = []string{f}
	} else if home != "" {
		a.ConfigFiles = []string{filepath.Join(home, ".aws", "config")}
	}
	if f := r.str("AWS_SHARED_CREDENTIALS_FILE", ""); f != "" {
		a.CredentialsFiles = []string{f}
	} else if home != "" {
		a.CredentialsFiles = []string{filepath.Join(home, ".aws", "credentials")}
	}
	if a.WebIdentityToken != "" && a.RoleARN == "" {
		r.problem("AWS_ROLE_ARN is required when GITLAB_OIDC_TOKEN is set: the ARN of the IAM role whose trust policy allows GitLab's OIDC provider")
	}
	if a.RoleARN != "" && a.WebIdentityToken != "" && !strings.HasPrefix(a.RoleARN, "arn:") {
		r.problem("AWS_ROLE_ARN=%q: want a role ARN such as arn:aws:iam::123456789012:role/agentbot", a.RoleARN)
	}
	if (a.AccessKeyID == "") != (a.SecretAccessKey == "") {
		r.problem("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither")
	}
	for _, e := range []struct{ name, v string }{
		{"AWS_ENDPOINT_URL", a.Endpoint}, {"AWS_ENDPOINT_URL_STS", a.STSEndpoint},
		{"AWS_ENDPOINT_URL_SECRETS_MANAGER", a.SecretsManagerEndpoint},
	} {
		if e.v != "" && !validEndpointURL(e.v) {
			r.problem("%s=%q: want an http(s) URL", e.name, e.v)
		}
	}
	return a, r.err()
}

// WebIdentity reports whether agentbot assumes AWS_ROLE_ARN itself with the
// GitLab OIDC token.
func (a AWS) WebIdentity() bool { return a.RoleARN != "" && a.WebIdentityToken != "" }

// validEndpointURL reports whether s is an absolute http(s) URL with a host.
func validEndpointURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
