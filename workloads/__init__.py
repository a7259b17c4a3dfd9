"""The edge workloads the operator deploys."""
