"""A local Kubernetes control plane from real binaries, with KWOK GPU nodes per base station."""
