"""Model serving: replica processes that answer KServe v1 and Open Inference Protocol requests.

Replicas run under a separate *serving interpreter* (`env.py`) that has kserve installed; they
import only the standard library, kserve, the model frameworks and `jupyter_cloudml.models`.
"""
