"""One generation from its arguments to its results: the parameter schema, the job, sampling taken
over, the hires pass rule, the after-sampling pipeline."""
