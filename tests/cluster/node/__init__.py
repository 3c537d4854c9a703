"""The process node (``python -m cluster.node``): a node agent that does a kubelet's job for the
test cluster, as an ordinary client of the real API server with the node's own identity
(``system:node:<name>``, so the Node authorizer and NodeRestriction judge every request it makes).

- Registers its Node (cpu, memory, pods and ``nvidia.com/gpu`` capacity, the GPU product label,
  optional taints), keeps its Lease in ``kube-node-lease`` and its Ready condition fresh.
- Runs the pods the scheduler binds to it as local processes: an image maps to a local Python
  interpreter (``python`` in a command runs it; a ``python`` shim leads the PATH), an unknown
  image waits in ``ErrImagePull``/``ImagePullBackOff``. Init containers run in order, then every
  container; restarts follow ``restartPolicy`` with CrashLoopBackOff delays.
- Each container runs in its own mount and UTS namespace (``unshare``): its hostname is the
  pod's, ``/etc/hosts`` is the pod's (see DNS below), and the pod's service-account volume is
  bind-mounted at ``/var/run/secrets/kubernetes.io/serviceaccount`` with a token made by
  TokenRequest, so in-cluster clients work unchanged. Other volumes (ConfigMaps, Secrets,
  projected and downward API files, emptyDirs, claims bound to hostPath/local volumes) are host
  folders; their container paths in the command, args and env are rewritten to them.
- Each pod gets its own loopback address (``127.<block>.x.y``) as its pod IP.
- Reports pod phases, conditions and container states (exit codes, reasons) through
  ``pods/status``, and events; a deleted pod's containers get SIGTERM, then SIGKILL after the
  grace period (capped), and the node removes the pod.
- Serves ``/containerLogs/...`` over TLS (client certificates of the cluster CA only), which
  the API server calls for ``pods/log``: ``follow``, ``tailLines``, ``timestamps``,
  ``sinceSeconds``/``sinceTime``, ``limitBytes``, ``previous``; logs are CRI-format files.
- Readiness probes (``httpGet``, ``tcpSocket``, ``exec``) gate the Ready condition.

DNS: with ``--dns-kubeconfig`` (an identity that may list Services and Pods, as CoreDNS's may)
the agent writes every pod's ``/etc/hosts`` with the records cluster DNS serves for headless
Services: ``<hostname>.<service>.<namespace>.svc[.cluster.local]`` and
``<service>.<namespace>.svc[.cluster.local]`` resolve to pod IPs (``dns.hosts_entries``).
Traffic never leaves 127.0.0.0/8.

Not done (not needed by the tests): liveness and startup probes, exec/attach/port-forward,
resource enforcement, image pulls.
"""
