// Package awstest is a wire-level fake of the AWS APIs agentbot calls: STS
// (AssumeRoleWithWebIdentity and GetCallerIdentity, query protocol with XML
// answers) and Secrets Manager (GetSecretValue, JSON 1.1 protocol). Point
// the real SDK at it with AWS_ENDPOINT_URL (or the service-specific
// variables); it records every request and can refuse the role.
package awstest

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Account is the fake's AWS account id.
const Account = "123456789012"

// Static credentials the tests sign with; the fake answers as the IAM user
// they belong to.
const (
	AccessKeyID     = "AKIAAGENTBOTTEST0001"
	SecretAccessKey = "fake-secret-access-key"
	UserARN         = "arn:aws:iam::" + Account + ":user/agentbot-dev"
)

// AssumedKeyID is the access key AssumeRoleWithWebIdentity hands out.
const AssumedKeyID = "ASIAAGENTBOTASSUMED1"

// Request is one request the fake answered.
type Request struct {
	Service string // sts or secretsmanager
	Action  string // AssumeRoleWithWebIdentity, GetCallerIdentity, GetSecretValue
	// AccessKeyID signed the request ("" for the unsigned
	// AssumeRoleWithWebIdentity).
	AccessKeyID string
	Region      string
	// Params are the query parameters (STS) or the JSON body's string
	// fields (Secrets Manager).
	Params map[string]string
}

// Fake is the fake AWS endpoint.
type Fake struct {
	URL string

	srv *httptest.Server

	mu        sync.Mutex
	secrets   map[string]string
	deny      bool
	requests  []Request
	roleARN   string
	expiresIn time.Duration
}

// New starts a fake, stopped when the test ends.
func New(t testing.TB) *Fake {
	f := &Fake{secrets: map[string]string{}, expiresIn: time.Hour}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// Env returns the variables that send the SDK to the fake and sign with
// the test's static credentials.
func (f *Fake) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":      f.URL,
		"AWS_ACCESS_KEY_ID":     AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": SecretAccessKey,
		"AWS_REGION":            "eu-west-1",
	}
}

// SetSecret stores a secret's string value.
func (f *Fake) SetSecret(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[name] = value
}

// DenyAssumeRole makes AssumeRoleWithWebIdentity answer AccessDenied, as a
// trust policy whose sub condition does not match would.
func (f *Fake) DenyAssumeRole(deny bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deny = deny
}

// Requests returns the requests answered so far.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// Count counts the requests for action.
func (f *Fake) Count(action string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Action == action {
			n++
		}
	}
	return n
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/\d+/([^/]+)/`)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := Request{Params: map[string]string{}}
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		req.AccessKeyID, req.Region = m[1], m[2]
	}
	if target := r.Header.Get("X-Amz-Target"); strings.HasPrefix(target, "secretsmanager.") {
		req.Service, req.Action = "secretsmanager", strings.TrimPrefix(target, "secretsmanager.")
		var fields map[string]any
		_ = json.Unmarshal(body, &fields)
		for k, v := range fields {
			if s, ok := v.(string); ok {
				req.Params[k] = s
			}
		}
		f.record(req)
		f.serveSecrets(w, req)
		return
	}
	form, err := parseQuery(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Service, req.Action = "sts", form["Action"]
	req.Params = form
	f.record(req)
	f.serveSTS(w, req)
}

func (f *Fake) record(r Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
}

func parseQuery(r *http.Request, body []byte) (map[string]string, error) {
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range r.Form {
		out[k] = v[0]
	}
	return out, nil
}

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

func (f *Fake) serveSTS(w http.ResponseWriter, req Request) {
	f.mu.Lock()
	deny := f.deny
	f.mu.Unlock()
	switch req.Action {
	case "AssumeRoleWithWebIdentity":
		if deny {
			stsError(w, http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
			return
		}
		if req.Params["WebIdentityToken"] == "" || req.Params["RoleArn"] == "" {
			stsError(w, http.StatusBadRequest, "ValidationError", "RoleArn and WebIdentityToken are required")
			return
		}
		f.mu.Lock()
		f.roleARN = req.Params["RoleArn"]
		f.mu.Unlock()
		role := req.Params["RoleArn"][strings.LastIndex(req.Params["RoleArn"], "/")+1:]
		session := req.Params["RoleSessionName"]
		writeXML(w, assumeResponse{
			NS: stsNS,
			Credentials: stsCredentials{AssumedKeyID, "assumed-secret-key", "assumed-session-token",
				time.Now().Add(f.expiresIn).UTC().Format(time.RFC3339)},
			RoleARN:   fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", Account, role, session),
			RoleID:    "AROAAGENTBOT:" + session,
			Provider:  "gitlab.com",
			RequestID: "req-assume",
		})
	case "GetCallerIdentity":
		arn, userID := UserARN, "AIDAAGENTBOTDEV"
		if req.AccessKeyID == AssumedKeyID {
			f.mu.Lock()
			role := f.roleARN[strings.LastIndex(f.roleARN, "/")+1:]
			f.mu.Unlock()
			arn, userID = fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/session", Account, role), "AROAAGENTBOT:session"
		}
		writeXML(w, struct {
			XMLName xml.Name `xml:"GetCallerIdentityResponse"`
			NS      string   `xml:"xmlns,attr"`
			Arn     string   `xml:"GetCallerIdentityResult>Arn"`
			UserID  string   `xml:"GetCallerIdentityResult>UserId"`
			Account string   `xml:"GetCallerIdentityResult>Account"`
			ReqID   string   `xml:"ResponseMetadata>RequestId"`
		}{NS: stsNS, Arn: arn, UserID: userID, Account: Account, ReqID: "req-whoami"})
	default:
		stsError(w, http.StatusBadRequest, "InvalidAction", "the fake does not know "+req.Action)
	}
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeResponse struct {
	XMLName     xml.Name       `xml:"AssumeRoleWithWebIdentityResponse"`
	NS          string         `xml:"xmlns,attr"`
	Credentials stsCredentials `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
	RoleARN     string         `xml:"AssumeRoleWithWebIdentityResult>AssumedRoleUser>Arn"`
	RoleID      string         `xml:"AssumeRoleWithWebIdentityResult>AssumedRoleUser>AssumedRoleId"`
	Provider    string         `xml:"AssumeRoleWithWebIdentityResult>Provider"`
	RequestID   string         `xml:"ResponseMetadata>RequestId"`
}

func stsError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(code)
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		NS      string   `xml:"xmlns,attr"`
		Type    string   `xml:"Error>Type"`
		Code    string   `xml:"Error>Code"`
		Message string   `xml:"Error>Message"`
		ReqID   string   `xml:"RequestId"`
	}{NS: stsNS, Type: "Sender", Code: errCode, Message: msg, ReqID: "req-error"})
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

func (f *Fake) serveSecrets(w http.ResponseWriter, req Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if req.Action != "GetSecretValue" {
		jsonError(w, "InvalidRequestException", "the fake does not know "+req.Action)
		return
	}
	name := req.Params["SecretId"]
	f.mu.Lock()
	value, ok := f.secrets[name]
	f.mu.Unlock()
	if !ok {
		jsonError(w, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ARN":           fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", req.Region, Account, name),
		"Name":          name,
		"SecretString":  value,
		"VersionId":     "v1",
		"VersionStages": []string{"AWSCURRENT"},
		"CreatedDate":   1.7e9,
	})
}

func jsonError(w http.ResponseWriter, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

// OIDCToken builds an unsigned JWT with GitLab's claims, for the fake's
// AssumeRoleWithWebIdentity (which does not verify it).
func OIDCToken(sub, aud string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": "https://gitlab.example.com", "sub": sub, "aud": aud, "project_path": "group/project"}) +
		".c2lnbmF0dXJl"
}
