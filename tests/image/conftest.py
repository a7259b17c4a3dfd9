from medmec.workloads.modelstore.testing import minio_server, model_store  # noqa: F401
