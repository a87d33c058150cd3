package gitlabtest

import (
	"net/http"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

// listUsers answers GET /users?username=…, the one filter agentbot uses
// (case-insensitive, as in GitLab).
func (s *Server) listUsers(q *request) (int, any) {
	q.checkQuery("username")
	name := q.r.URL.Query().Get("username")
	out := []*gitlab.User{}
	for _, u := range s.users {
		if name != "" && strings.EqualFold(u.Username, name) {
			out = append(out, &gitlab.User{ID: u.ID, Username: u.Username, Name: u.Name, State: "active",
				PublicEmail: u.PublicEmail, Bot: u.Bot, WebURL: s.srv.URL + "/" + u.Username})
		}
	}
	return http.StatusOK, paginate(q, out)
}
