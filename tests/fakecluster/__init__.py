"""A fake one-node Kubernetes cluster for tests: kmock's API server with real semantics
(resource versions, selectors, watches, garbage collection, pod logs), the Job, Deployment and
KServe controllers, a scheduler with GPUs, a kubelet running pods as local processes, and
RBAC, ResourceQuota and LimitRange enforcement for service-account clients."""

from .cluster import FakeCluster
from .common import ApiError
from .faults import Fault
from .rbac import RequestAttributes

__all__ = ["ApiError", "FakeCluster", "Fault", "RequestAttributes"]
