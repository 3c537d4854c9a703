"""A fake one-node Kubernetes cluster for tests: kmock's API server with real semantics
(resource versions, selectors, watches, garbage collection, pod logs), the Job, Deployment and
KServe controllers, a scheduler with GPUs, and a kubelet running pods as local processes."""

from .cluster import FakeCluster
from .common import ApiError
from .faults import Fault

__all__ = ["ApiError", "FakeCluster", "Fault"]
