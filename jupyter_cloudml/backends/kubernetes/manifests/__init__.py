"""Pure builders of the Kubernetes backend: a spec in, plain dicts (manifests) out; no API
calls, no I/O. `training` builds a job's ConfigMap, Service and Indexed Jobs; `serving`,
`kserve` and `plain` a deployment's InferenceService or Deployments and Services;
`tensorboard` a TensorBoard's; `deploy_preview` what a deployment would be applied as."""
