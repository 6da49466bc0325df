"""Systems and the work done with them: the registry, runs, training jobs, job ownership."""
