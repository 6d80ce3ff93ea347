"""Read queries that must stay fast at 100,000 cases and millions of audit events.

The services call these builders; each query is shaped so that an index gives both its filter and its
order (tests/engine/test_query_plans.py and tests/postgres/test_query_plans_pg.py check the plans):
- paging.py: keyset ("seek") pagination with opaque cursors, and counts capped at COUNT_CAP;
- tasks.py: the inbox (open tasks of a user's forums, candidate-user rows and assignments);
- instances.py: the case list with its filters.
"""
