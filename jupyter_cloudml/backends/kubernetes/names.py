"""DNS-1123 names for cluster objects, valid and unique whatever text they come from."""

from __future__ import annotations

import hashlib
import re

#: A DNS-1123 label: what Kubernetes requires of most object names and of pod hostnames.
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MAX = 63
HASH_LEN = 6

#: Longest base name of a job's objects: leaves room for ``-worker-<index>`` (the hostnames
#: Kubernetes gives indexed-job pods) within 63 characters.
JOB_NAME_MAX = 47


def dns_label(text: str, max_len: int = DNS_LABEL_MAX, *, letter_first: bool = False) -> str:
    """``text`` as a DNS-1123 label of at most ``max_len`` characters.

    Valid text is kept as is; anything else is slugged and suffixed with a short hash of the
    original text, so two different texts never end up with the same name. ``letter_first``
    also makes it a DNS-1035 label (Service names must start with a letter).
    """
    if not 1 + HASH_LEN <= max_len <= DNS_LABEL_MAX:
        raise ValueError(f"max_len must be {1 + HASH_LEN}..{DNS_LABEL_MAX}, got {max_len}")
    if _valid(text, max_len, letter_first):
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LEN]
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if letter_first and not slug[:1].isalpha():
        slug = "x" + slug
    slug = slug[: max_len - HASH_LEN - 1].rstrip("-")
    return f"{slug}-{digest}" if slug else ("x" if letter_first else "") + digest


def job_name(job_id: str) -> str:
    """The base name of every object of a job (and its ``cloudml.io/job`` label value)."""
    return dns_label(job_id, JOB_NAME_MAX, letter_first=True)


def is_dns_label(text: str) -> bool:
    """Whether ``text`` is a valid DNS-1123 label."""
    return _valid(text, DNS_LABEL_MAX, False)


def _valid(text: str, max_len: int, letter_first: bool) -> bool:
    return (
        len(text) <= max_len
        and DNS_LABEL_RE.match(text) is not None
        and (not letter_first or text[0].isalpha())
    )
