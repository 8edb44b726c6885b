"""The lab: a local S3 API server, network namespaces, agents and traffic, for the demo, tests and benchmarks.

Traffic stays on this machine: S3 on 127.0.0.1, and each node's device in a namespace the lab
made. Everything the lab creates it removes by its own name or PID, even when a test fails.
"""

from agent.lab.namespaces import Namespace, remove_orphaned_namespaces, run_in
from agent.lab.nodes import Lab, wait_until
from agent.lab.server import (
    S3_ENGINES,
    LabError,
    S3Server,
    SeaweedServer,
    free_port,
    make_s3_server,
    stop_process,
    use_lab_credentials,
)

__all__ = [
    "S3_ENGINES",
    "Lab",
    "LabError",
    "Namespace",
    "S3Server",
    "SeaweedServer",
    "free_port",
    "make_s3_server",
    "remove_orphaned_namespaces",
    "run_in",
    "stop_process",
    "use_lab_credentials",
    "wait_until",
]
