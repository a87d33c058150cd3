package cli

import (
	"context"
	"errors"
)

func runRun(_ context.Context, _ *env, _ []string) error {
	return errors.New("not built yet")
}
