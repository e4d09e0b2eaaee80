"""The email sender: ``playbook-actions`` in, one email per action out, over SMTP.

Functional core, imperative shell. Pure, testable without Kafka or SMTP:

- ``action.py``: decoding an action record and deciding whether the sender handles it;
- ``eligibility.py``: when an action is due, expired, or no longer wanted (send-time re-check);
- ``retry.py``: which SMTP failures are transient, permanent or in doubt; backoff;
- ``ledger.py`` (its ``TRANSITIONS``, ``settle_unconfirmed``): the per-action state
  machine, and which rows read before a lost commit this ledger may keep;
- ``assignor.py``: one active sender per group, the others standing by;
- ``render.py``: Jinja2 templates to a message; ``contacts.py``: customer id to address.

The shell: ``ledger.py`` (SQLite), ``smtp.py`` (smtplib), ``runner.py`` (the Kafka loop),
``metrics.py`` (Prometheus and ``/healthz``), ``sink.py`` (``segments smtp-sink``).
"""
