package cli

import (
	"context"
	"errors"
)

func runDoctor(_ context.Context, _ *env, _ []string) error {
	return errors.New("not built yet")
}
