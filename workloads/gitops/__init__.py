"""Install and ship medmec: the Helm charts (install, upgrade, uninstall, service-account
credentials) and GitOps model delivery (promote, rollback, validate the kustomize overlays)."""
