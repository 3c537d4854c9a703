"""Views of the data model as text, JSON data and notebook bundles: pure functions, models in,
strings or plain data out; no Client, no I/O. `text` holds the building blocks; `jobs`,
`studies`, `deployments`, `tensorboards` and `dry_run` one subject each."""
