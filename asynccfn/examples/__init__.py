"""Custom resources that run on this machine with ``asynccfn local`` (see README.md)."""
