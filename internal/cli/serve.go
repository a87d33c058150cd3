package cli

import (
	"context"
	"errors"
)

func runServe(_ context.Context, _ *env, _ []string) error { return errors.New("not built yet") }

func runMigrate(_ context.Context, _ *env, _ []string) error { return errors.New("not built yet") }
