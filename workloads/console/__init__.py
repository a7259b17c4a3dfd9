"""The hospital console: a read-only, token-protected web page over the Kubernetes API and
the workloads' own endpoints (`medmec serve console`)."""
