"""Linkage: which records, across every organisation, belong to one person.

- features: identity tuples collapsed per source, and the comparison features Splink reads;
- model: the Splink model (comparisons, blocking, training, scoring) and clustering;
- ids: persistent person_ids, reconciled with the previous run, and their history;
- metrics: what a run can measure (link rates, cluster sizes, estimated error
  rates) and, on a generated place, accuracy against the truth;
- files: linking a data engineer's own CSV files (`placelake link`).

The stage entry point is jobs.link.link_all.
"""
