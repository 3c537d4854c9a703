"""What every backend shares: the distributed environment of a job's replicas (`cluster`), how
a replica is launched (`launch`), merging log lines in time order (`loglines`) and reading a
job's metrics from its folders (`job_metrics`)."""
