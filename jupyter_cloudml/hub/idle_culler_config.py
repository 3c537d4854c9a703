"""jupyterhub-idle-culler configuration (``--config``): each server's own idle limit."""

from jupyter_cloudml.hub.culler import cull_arbiter

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (traitlets config file)
c.IdleCuller.cull_arbiter_hook = cull_arbiter
