package run

import (
	"context"
	"errors"
)

// inPipeline hands the run to a CI pipeline on the project's runners.
func (s *state) inPipeline(ctx context.Context) error {
	return Permanent(errors.New("the pipeline executor is not built yet"))
}
