package gitlab

import (
	"context"
	"fmt"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// UserByUsername looks up an account by its username ("alice" or
// "@alice"); found is false when there is none.
func (c *Client) UserByUsername(ctx context.Context, username string) (u User, found bool, err error) {
	name := strings.TrimPrefix(strings.TrimSpace(username), "@")
	list, _, err := c.gl.Users.ListUsers(&gl.ListUsersOptions{ListOptions: gl.ListOptions{PerPage: 1}, Username: &name}, c.ctxOpt(ctx))
	if err != nil {
		return User{}, false, c.wrap(fmt.Sprintf("look up user %s", name), err)
	}
	if len(list) == 0 {
		return User{}, false, nil
	}
	return userFrom(list[0]), true, nil
}
